"""Results of a sweep (or of any set of run directories), read from the run directories themselves.

One row per run: its identity (method, noise kind and rate, seed, and any other grid axis), its
status and the numbers of its ``summary.json``. Results are always recomputed from the run
directories, so merging shards run on several machines is copying their ``runs/`` folders into one
sweep directory and collecting again (``noisyfer sweep SWEEP.yaml --collect --out DIR`` or
``noisyfer report DIR``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..config import load_yaml
from ..engine.rundir import atomic_write_bytes, dumps
from ..errors import UserError
from .spec import SweepSpec

__all__ = ["RESULT_METRICS", "collect_runs", "collect_sweep", "load_sweep_spec", "rows_to_csv", "write_rows"]

#: Summary fields copied into each row (``None`` when a run lacks one).
RESULT_METRICS = (
    "accuracy_best", "accuracy_last", "accuracy_last5",
    "balanced_accuracy_best", "balanced_accuracy_at_best_epoch", "balanced_accuracy_last", "balanced_accuracy_last5",
    "best_epoch", "epochs_done", "train_acc_given_last", "train_acc_true_last", "noisy_memorized_last",
    "noisy_corrected_last", "elapsed_s",
)
#: Grid axes that are already identity columns of every row (under another name).
CANONICAL_AXES = {"method": "method", "method.name": "method", "noise.kind": "noise_kind", "noise.rate": "noise_rate",
                  "seed": "seed"}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def identity(config: dict) -> dict:
    """``method``, ``noise_kind``, ``noise_rate``, ``seed`` of a configuration mapping."""
    method = config.get("method")
    noise = config.get("noise") or {}
    kind = noise.get("kind", "none")
    if noise.get("file") and kind == "none":
        kind = "file"
    return {"method": method.get("name", "ce") if isinstance(method, dict) else (method or "ce"),
            "noise_kind": kind, "noise_rate": float(noise.get("rate", 0.0) or 0.0),
            "seed": int(config.get("seed", 0) or 0)}


def _axis_value(key: str, value):
    return Path(str(value)).stem if key == "config" else value


def result_row(run_dir: Path, *, config: dict | None, name: str | None = None, axes: dict | None = None,
               failure: Path | None = None) -> dict:
    """The result row of one run directory (which may not exist yet: status ``missing``).

    ``failure``: the sweep's record of the point's failed process (``logs/NAME.failed.json``); when it
    exists the status is ``failed`` and ``failure`` says the exit status, the last line and the log.
    """
    summary = _read_json(run_dir / "summary.json")
    failed = _read_json(failure) if failure is not None and failure.is_file() else {}
    if config is None and (run_dir / "config.yaml").is_file():
        config = load_yaml(run_dir / "config.yaml")
    row = {"name": name or run_dir.name, **identity(config or {})}
    for key, value in (axes or {}).items():
        if key not in CANONICAL_AXES:
            row[key] = _axis_value(key, value)
    noise = summary.get("noise") or {}
    status = summary.get("status") or ("not started" if run_dir.is_dir() else "missing")
    if failed and status != "finished":
        status = "failed"
    row.update({"status": status, "realized_rate": noise.get("realized_rate"),
                "epochs": (config or {}).get("train", {}).get("epochs")})
    if failure is not None:
        row["failure"] = (f"exit status {failed.get('exit_status')}: {failed.get('message') or 'see the log'} "
                          f"(log: {failed.get('log')})") if status == "failed" else None
    for key in RESULT_METRICS:
        value = summary.get(key)
        row[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    row["run_dir"] = str(run_dir)
    return row


def load_sweep_spec(sweep_dir: str | Path) -> SweepSpec:
    path = Path(sweep_dir) / "sweep.yaml"
    if not path.is_file():
        raise UserError(f"not a sweep directory (no sweep.yaml): {sweep_dir}")
    return SweepSpec.from_mapping(load_yaml(path), source=str(path))


def collect_sweep(sweep_dir: str | Path, spec: SweepSpec | None = None) -> list[dict]:
    """One row per grid point of the sweep in ``sweep_dir`` (all shards), in grid order."""
    sweep_dir = Path(sweep_dir)
    spec = spec or load_sweep_spec(sweep_dir)
    rows = []
    for point in spec.points():
        run_dir = sweep_dir / "runs" / point.name
        config = None
        for candidate in (run_dir / "config.yaml", sweep_dir / "points" / f"{point.name}.yaml"):
            if candidate.is_file():
                config = load_yaml(candidate)
                break
        if config is None:
            try:
                config = spec.point_tree(point, runs_dir=sweep_dir / "runs")
            except UserError:  # its files are not reachable from here: identity from the grid values
                config = {}
        row = result_row(run_dir, config=config, name=point.name, axes=point.values,
                         failure=sweep_dir / "logs" / f"{point.name}.failed.json")
        for key, field in CANONICAL_AXES.items():  # a grid value is what the point was asked to be
            if key in point.values and not config:
                row[field] = point.values[key]
        rows.append(row)
    return rows


def collect_runs(run_dirs: list[Path]) -> list[dict]:
    """Rows of arbitrary run directories (axes: method, noise kind and rate, seed)."""
    return [result_row(Path(d), config=None) for d in run_dirs]


def _csv_cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return str(value)


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text of ``rows`` (columns: union of keys in first-seen order; absent values ``n/a``)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def write_rows(rows: list[dict], directory: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``DIR/STEM.csv`` and ``DIR/STEM.jsonl`` (one JSON object per row, absent values null)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, jsonl_path = directory / f"{stem}.csv", directory / f"{stem}.jsonl"
    atomic_write_bytes(csv_path, rows_to_csv(rows).encode())
    atomic_write_bytes(jsonl_path, "".join(dumps(r) + "\n" for r in rows).encode())
    return csv_path, jsonl_path
