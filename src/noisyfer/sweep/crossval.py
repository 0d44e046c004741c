"""Out-of-fold probabilities: ``K`` trainings on seeded stratified folds, run as a sweep.

``run_crossval(items, out, k=K)`` makes a sweep whose one grid axis is ``data.fold = 0..K-1`` (with
``data.folds=K`` and the user's train settings fixed), runs it with :func:`~noisyfer.sweep.run_sweep`
(resumable, ``jobs`` at a time, one run directory per fold in ``OUT/runs/data.fold-F``) and
:func:`collect_oof` puts the folds' held-out probabilities (``heldout_probs.npz``, see
:mod:`noisyfer.data.folds`) together: row ``i`` comes from the one fold run that held sample ``i``
out. The result is checked: every training sample scored exactly once, all folds trained on the
same given labels, and written as ``OUT/oof_probs.npy`` (N, C) with ``OUT/oof.json``.

>>> from noisyfer.sweep.crossval import run_crossval, collect_oof           # doctest: +SKIP
>>> run_crossval(["configs/ce_sim.yaml", "train.epochs=4"], "cv/sim", k=4)  # doctest: +SKIP
>>> oof = collect_oof("cv/sim"); oof.probs.shape                            # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import load_yaml
from ..data.folds import HELDOUT_FILE
from ..engine.rundir import atomic_write_bytes, dumps
from ..errors import UserError
from .runner import run_sweep
from .spec import SweepSpec

__all__ = ["OOF_FILE", "OutOfFold", "collect_oof", "crossval_spec", "run_crossval", "write_oof"]

OOF_FILE = "oof_probs.npy"
_FOLD_KEYS = ("data.folds", "data.fold")


def crossval_spec(items: list[str], *, k: int, fold_seed: int = 0) -> SweepSpec:
    """The sweep of a ``k``-fold cross-validation of ``[CONFIG.yaml] key=value ...`` (one value per key)."""
    if k < 2:
        raise UserError(f"--cv: expected at least 2 folds, got {k}")
    spec = SweepSpec.from_args(list(items))
    if spec.grid:
        raise UserError(f"--cv: train settings take one value each; got a grid over {', '.join(spec.grid)} "
                        "(run one cross-validation per setting)")
    if spec.per_method:
        raise UserError("--cv: per-method overrides (METHOD:key=value) make no sense for one training setting")
    clash = [key for key in (*_FOLD_KEYS, "data.fold_seed") if key in spec.fixed]
    if clash:
        raise UserError(f"--cv sets {', '.join(clash)} itself; use --cv K and --fold-seed S")
    spec.fixed.update({"data.folds": int(k), "data.fold_seed": int(fold_seed)})
    spec.add_axis("data.fold", list(range(k)), where="--cv")
    spec.replicates = ("data.fold",)
    return spec


def run_crossval(items: list[str], out: str | Path, *, k: int, fold_seed: int = 0, jobs: int = 1,
                 devices: tuple[str, ...] = (), echo: Callable[[str], None] = print) -> dict:
    """Train (or resume, or skip) the ``k`` fold runs into ``out``; returns the runner's counts."""
    spec = crossval_spec(items, k=k, fold_seed=fold_seed)
    return run_sweep(spec, out, jobs=jobs, devices=devices, echo=echo)


@dataclass
class OutOfFold:
    """Out-of-fold predictions of a cross-validation directory.

    Attributes
    ----------
    probs
        (N, C) float64: row i predicted by the model of the fold that held sample i out.
    given
        (N,) the training labels every fold run was given (after any noise).
    fold
        (N,) the fold of each sample.
    runs
        The fold run directories, in fold order.
    """

    probs: np.ndarray
    given: np.ndarray
    fold: np.ndarray
    runs: list[Path]

    @property
    def first_run(self) -> Path:
        return self.runs[0]


def collect_oof(out: str | Path) -> OutOfFold:
    """Gather and check the held-out probabilities of the fold runs in ``out`` (see the module doc).

    Raises
    ------
    UserError
        A fold run that is missing or unfinished, folds of different settings, a sample scored
        twice or never.
    """
    from ..noise import load_noisy_labels

    out = Path(out)
    spec_file = out / "sweep.yaml"
    if not spec_file.is_file():
        raise UserError(f"{out}: not a cross-validation directory (no sweep.yaml; run noisyfer suspects --cv K first)")
    spec = SweepSpec.from_mapping(load_yaml(spec_file), source=str(spec_file))
    k = int(spec.fixed.get("data.folds", 0) or 0)
    if k < 2 or list(spec.grid) != ["data.fold"]:
        raise UserError(f"{spec_file}: not a cross-validation sweep (expected one grid axis data.fold)")
    runs, probs, given, fold = [], None, None, None
    for point in spec.points():
        run_dir = out / "runs" / point.name
        summary_file = run_dir / "summary.json"
        status = json.loads(summary_file.read_text()).get("status") if summary_file.is_file() else "not started"
        if status != "finished":
            raise UserError(f"{run_dir}: fold {point.values['data.fold']} has not finished ({status}); run the "
                            "same command again to resume it")
        held_file = run_dir / HELDOUT_FILE
        if not held_file.is_file():
            raise UserError(f"{held_file}: missing (a run made before folds were recorded?)")
        labels = np.asarray(load_noisy_labels(run_dir / "train_labels.csv").labels, dtype=np.int64)
        with np.load(held_file) as held:
            idx, p, f = held["indices"].astype(np.int64), held["probs"].astype(np.float64), int(held["fold"])
        if given is None:
            given = labels
            probs = np.full((labels.size, p.shape[1]), np.nan)
            fold = np.full(labels.size, -1, dtype=np.int64)
        elif labels.shape != given.shape or not np.array_equal(labels, given):
            raise UserError(f"{run_dir}: trained on other labels than {runs[0]} (the folds must share one setting)")
        if p.shape != (idx.size, probs.shape[1]) or (idx.size and (idx.min() < 0 or idx.max() >= given.size)):
            raise UserError(f"{held_file}: probabilities of shape {p.shape} for {idx.size} indices do not fit "
                            f"{given.size} samples x {probs.shape[1]} classes")
        twice = idx[fold[idx] >= 0]
        if twice.size:
            raise UserError(f"{held_file}: sample {int(twice[0])} is held out by fold {int(fold[twice[0]])} too")
        probs[idx], fold[idx] = p, f
        runs.append(run_dir)
    missing = np.flatnonzero(fold < 0)
    if missing.size:
        raise UserError(f"{out}: {missing.size} training samples are in no held-out fold (e.g. {int(missing[0])})")
    return OutOfFold(probs=probs, given=given, fold=fold, runs=runs)


def write_oof(oof: OutOfFold, out: str | Path) -> Path:
    """``OUT/oof_probs.npy`` (what ``noisyfer suspects --probs`` reads) and ``OUT/oof.json``."""
    out = Path(out)
    path = out / OOF_FILE
    tmp = out / f".{OOF_FILE}.tmp.npy"
    np.save(tmp, oof.probs.astype(np.float32))
    tmp.replace(path)
    meta = {"folds": len(oof.runs), "num_samples": int(oof.given.size), "num_classes": int(oof.probs.shape[1]),
            "runs": [str(r) for r in oof.runs], "fold_sizes": np.bincount(oof.fold).tolist()}
    atomic_write_bytes(out / "oof.json", (dumps(meta, indent=2) + "\n").encode())
    return path
