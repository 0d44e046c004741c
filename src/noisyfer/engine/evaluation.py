"""Evaluate a finished (or interrupted) run's weights on a split: ``noisyfer eval RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import load_yaml, resolve_config
from ..errors import UserError
from .build import build_experiment, resolve_device
from .loader import TensorLoader
from .metrics import classification_report
from .rundir import RunDirectory, atomic_write_bytes, dumps
from .trainer import Precision, evaluate


def evaluate_run(run_dir: str | Path, *, checkpoint: str = "best", split: str = "test",
                 device: str | None = None) -> tuple[dict, Path]:
    """Evaluate the run's ``best`` / ``last`` weights (or a checkpoint file) on ``split``.

    Returns the report (accuracy, balanced and per-class accuracy, confusion matrix) and the JSON file
    it was written to inside the run directory.
    """
    run = RunDirectory.existing(run_dir)
    tree = load_yaml(run.config)
    tree["resume"] = None
    if device:
        tree["device"] = device
    cfg = resolve_config(tree)
    exp = build_experiment(cfg, device=resolve_device(cfg.device))
    if split not in ("train", "test"):
        raise UserError(f"--split: expected train or test, got '{split}'")
    data = exp.train if split == "train" else exp.test
    path = run.resolve_checkpoint(checkpoint)
    state = torch.load(path, map_location=exp.device, weights_only=False)
    exp.method.load_state_dict(state["method"])
    loader = TensorLoader(data, batch_size=cfg.train.eval_batch_size, device=exp.device)
    preds, _ = evaluate(exp.method, loader, Precision(cfg.train.amp, exp.device), exp.augment)
    report = classification_report(data.labels, preds, data.num_classes).as_dict()
    report.update({"split": split, "checkpoint": str(path.relative_to(run.path) if path.is_relative_to(run.path) else path),
                   "epoch": state.get("epoch"), "num_samples": len(data), "class_names": list(data.class_names)})
    out = run.path / f"eval_{split}_{Path(checkpoint).stem if checkpoint not in ('best', 'last') else checkpoint}.json"
    atomic_write_bytes(out, (dumps(report, indent=2) + "\n").encode())
    return report, out
