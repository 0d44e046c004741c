"""Evaluate a finished (or interrupted) run's weights on a split: ``noisyfer eval RUN_DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import load_yaml, resolve_config
from ..errors import UserError
from .build import build_experiment, resolve_device
from .loader import TensorLoader
from .metrics import classification_report
from .provenance import check_data_fingerprint, data_fingerprint
from .rundir import RunDirectory, atomic_write_bytes, dumps, load_method_weights
from .trainer import Precision, evaluate


def evaluate_run(run_dir: str | Path, *, checkpoint: str = "best", split: str = "test",
                 device: str | None = None, allow_data_change: bool = False) -> tuple[dict, Path]:
    """Evaluate the run's ``best`` / ``last`` weights (or a checkpoint file) on ``split``.

    Returns the report (accuracy, balanced and per-class accuracy, confusion matrix) and the JSON file
    it was written to inside the run directory.

    Raises
    ------
    UserError
        When the split differs from the data the run was trained on (its fingerprint in
        ``RUN_DIR/data.json``), unless ``allow_data_change``: then a warning is printed and the
        report records ``"data_changed"``.
    """
    run = RunDirectory.existing(run_dir)
    if split not in ("train", "test"):
        raise UserError(f"--split: expected train or test, got '{split}'")
    tree = load_yaml(run.config)
    tree["resume"] = None
    if device:
        tree["device"] = device
    cfg = resolve_config(tree)
    path = run.resolve_checkpoint(checkpoint)
    exp = build_experiment(cfg, device=resolve_device(cfg.device))
    data = exp.train if split == "train" else exp.test
    changes = check_data_fingerprint(run.data_fingerprint, data_fingerprint({split: data}), splits=(split,))
    if changes and not allow_data_change:
        raise UserError(f"{run.path}: the data changed since the run was trained ({'; '.join(changes)}); "
                        "the scores would not be the run's: restore the dataset, or give --allow-data-change")
    if changes:
        print(f"noisyfer: warning: evaluating on changed data ({'; '.join(changes)})", file=sys.stderr)
    state = load_method_weights(exp.method, path, map_location=exp.device)
    loader = TensorLoader(data, batch_size=cfg.train.eval_batch_size, device=exp.device)
    preds, _ = evaluate(exp.method, loader, Precision(cfg.train.amp, exp.device), exp.augment)
    report = classification_report(data.labels, preds, data.num_classes).as_dict()
    report.update({"split": split, "checkpoint": str(path.relative_to(run.path) if path.is_relative_to(run.path) else path),
                   "epoch": state.get("epoch"), "num_samples": len(data), "class_names": list(data.class_names),
                   "data_changed": changes or None})
    out = run.path / f"eval_{split}_{Path(checkpoint).stem if checkpoint not in ('best', 'last') else checkpoint}.json"
    atomic_write_bytes(out, (dumps(report, indent=2) + "\n").encode())
    return report, out
