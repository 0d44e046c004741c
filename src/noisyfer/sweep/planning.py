"""Plan a sweep's points: for each, from its run directory, *skip*, *resume* or *start* (see
:mod:`noisyfer.sweep.runner` for the sweep directory's layout); runs named before a one-value narrowing
kept its axis are renamed first. Every executor (local processes, submitit, Slurm) plans with
:func:`plan_sweep`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import load_yaml
from ..errors import UserError
from .spec import GridPoint, SweepSpec, differing_keys

__all__ = ["Planned", "adopt_former_runs", "plan_point", "plan_sweep"]


@dataclass
class Planned:
    """What the runner does with one point, and why."""

    point: GridPoint
    config: dict
    run_dir: Path
    action: str  # "skip", "start" or "resume"
    reason: str

    @property
    def epochs(self) -> int:
        return int(self.config["train"]["epochs"])


def _summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def plan_point(point: GridPoint, config: dict, run_dir: Path) -> Planned:
    """Decide what to do with ``point`` given its run directory (see the module docstring)."""
    if not run_dir.exists():
        return Planned(point, config, run_dir, "start", "new")
    if not (run_dir / "config.yaml").is_file():
        leftovers = [p for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"]
        if leftovers:
            raise UserError(f"{run_dir}: has files but no config.yaml; not a run this sweep started (move it away)")
        shutil.rmtree(run_dir)  # killed between creating the directory and writing its config: no file in it
        return Planned(point, config, run_dir, "start", "empty directory of a killed start")
    changed = differing_keys(_comparable(load_yaml(run_dir / "config.yaml")), _comparable(config))
    if changed:
        raise UserError(f"{run_dir}: the run was made with other settings ({', '.join(changed[:6])}"
                        f"{', ...' if len(changed) > 6 else ''}); the sweep changed since, use another --out")
    summary = _summary(run_dir)
    done = int(summary.get("epochs_done", 0) or 0)
    epochs = int(config["train"]["epochs"])
    if summary.get("status") == "finished" and done >= epochs:
        return Planned(point, config, run_dir, "skip", f"finished ({done} epochs)")
    if done > epochs:
        raise UserError(f"{run_dir}: has {done} epochs, the sweep asks for {epochs}")
    return Planned(point, config, run_dir, "resume", f"{done} of {epochs} epochs done")


def _comparable(tree: dict) -> dict:
    """A configuration with the defaults of this version filled in (keys added since a run started are
    no change) and its paths absolute (as a run's ``config.yaml`` stores them); as is if it does not resolve."""
    from ..config import resolve_config
    from ..engine.provenance import absolute_paths

    try:
        return absolute_paths(resolve_config({**tree, "resume": None}))[0].to_dict()
    except UserError:
        return tree


def adopt_former_runs(points: list[GridPoint], runs_dir: Path, *, dry_run: bool,
                      echo: Callable[[str], None] = print) -> dict[str, Path]:
    """``{point name: its run directory}``, after renaming runs made under a point's former name.

    Before an axis narrowed to one value kept its place in run names, ``method=lrn`` named the runs of a
    sweep file without ``method-lrn``: such a run directory (a run's ``config.yaml`` and more) is renamed
    to the point's name, so finished runs are skipped and unfinished ones resumed instead of trained
    again. A dry run renames nothing and plans from the former directory.
    """
    run_dirs = {}
    for point in points:
        run_dir = runs_dir / point.name
        former = None if point.former_name is None else runs_dir / point.former_name
        if former is not None and not run_dir.exists() and (former / "config.yaml").is_file():
            if dry_run:
                echo(f"  rename {point.former_name} -> {point.name}  (its name before one-value narrowing kept the axis)")
                run_dir = former
            else:
                try:
                    os.rename(former, run_dir)
                    echo(f"renamed {former} -> {run_dir} (its name before one-value narrowing kept the axis)")
                except FileNotFoundError:  # another process of this sweep renamed it first
                    pass
        run_dirs[point.name] = run_dir
    return run_dirs


def plan_sweep(spec: SweepSpec, sweep_dir: str | Path, *, shard: tuple[int, int] = (1, 1), dry_run: bool = False,
               echo: Callable[[str], None] = print) -> list[Planned]:
    """Plan this shard's points (the first step of every executor): print what is to start, resume and skip;
    with ``dry_run`` list every point (and each refused one, with why) and write nothing, else write
    ``sweep.yaml``; return the plans.

    Raises
    ------
    UserError
        A point whose configuration is invalid (with ``dry_run``: if any is), or a run directory made with
        other settings.
    """
    sweep_dir = Path(sweep_dir)
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UserError(f"--out: not a directory: {sweep_dir}")
    runs_dir = sweep_dir / "runs"
    refused: list | None = [] if dry_run else None  # a dry run lists every refused point; a real run stops at one
    resolved = spec.resolved(runs_dir=runs_dir, shard=shard, refused=refused)
    run_dirs = adopt_former_runs([point for point, _ in resolved], runs_dir, dry_run=dry_run, echo=echo)
    plans = [plan_point(point, config, run_dirs[point.name]) for point, config in resolved]
    total = len(spec.points())
    echo(f"sweep {sweep_dir}: {total} points, shard {shard[0]}/{shard[1]} has {len(plans) + len(refused or [])}: "
         + ", ".join(f"{sum(p.action == a for p in plans)} to {a}" for a in ("start", "resume", "skip"))
         + (f", {len(refused)} refused" if refused else ""))
    if dry_run:
        for p in plans:
            echo(f"  {p.action:<6} {p.point.name}  ({p.reason})")
        for point, message in refused:
            echo(f"  refuse {point.name}  ({message})")
        if refused:
            raise UserError(f"sweep: {len(refused)} of {len(refused) + len(plans)} points would be refused "
                            "(listed above); fix them before running")
        return plans
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.yaml").write_text(spec.to_yaml())
    (sweep_dir / "logs").mkdir(exist_ok=True)
    return plans
