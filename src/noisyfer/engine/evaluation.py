"""Evaluate a finished (or interrupted) run's weights: ``noisyfer eval RUN_DIR``.

On the run's own data (``--split test`` or ``train``), or on another dataset with the same classes
(``--data NAME`` and/or ``data.*`` settings): cross-dataset evaluation as in the papers' tables. Classes are
matched by name (``Happy`` = ``happiness``), never by position; a class the run does not know is refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..config import load_yaml, parse_override, resolve_config, set_dotted
from ..data.classes import class_name
from ..errors import UserError
from .build import build_experiment, resolve_device
from .loader import TensorLoader
from .metrics import classification_report
from .provenance import check_data_fingerprint, data_fingerprint
from .rundir import RunDirectory, atomic_write_bytes, dumps, load_method_weights
from .trainer import Precision, evaluate

#: What the scores of each split are measured against (stated in every eval report).
SCORED_AGAINST = {
    "test": "the dataset's test labels",
    "train": "the dataset's own training labels (before any injected noise; the run trained on "
             "RUN_DIR/train_labels.csv, scored separately below when it differs)",
    "other": "the labels of the other dataset's {split} split, classes matched by name",
}


def _data_tree(run_tree: dict, data_name: str | None, settings: list[str]) -> dict:
    """The ``data`` section to evaluate on: the run's, or ``data_name``'s, with ``data.*`` settings applied."""
    tree: dict = {"data": {"name": data_name} if data_name else dict(run_tree.get("data") or {})}
    for item in settings:
        key, value = parse_override(item)
        if key != "data" and not key.startswith("data."):
            raise UserError(f"'{item}': eval takes data.* settings of the dataset to score on")
        set_dotted(tree, key, value)
    return tree["data"]


def label_mapping(source: list[str], run_classes: list[str], *, where: str) -> np.ndarray:
    """``mapping[i]`` = index among the run's classes of the evaluated dataset's class ``source[i]``."""
    index = {class_name(n): i for i, n in enumerate(run_classes)}
    unknown = [n for n in source if class_name(n) not in index]
    if unknown:
        raise UserError(f"{where} has class(es) {', '.join(unknown)} that the run was not trained on (run classes: "
                        f"{', '.join(run_classes)}); classes are matched by name: choose a dataset with the same "
                        "classes (data.classes, data.class_order)")
    return np.asarray([index[class_name(n)] for n in source], dtype=np.int64)


def evaluate_run(run_dir: str | Path, *, checkpoint: str = "best", split: str = "test",
                 device: str | None = None, allow_data_change: bool = False, data: str | None = None,
                 data_settings: list[str] | None = None) -> tuple[dict, Path]:
    """Evaluate the run's ``best`` / ``last`` weights (or a checkpoint file) on ``split``.

    With ``data`` (a dataset name) or ``data_settings`` (``data.*=value`` items) the split is taken from
    that dataset instead of the run's, resized to the run's image size, its classes mapped by name onto
    the run's.

    Returns the report (accuracy, balanced and per-class accuracy, confusion matrix, class order, what
    the labels are) and the JSON file it was written to inside the run directory.

    Raises
    ------
    UserError
        When the split differs from the data the run was trained on (its fingerprint in
        ``RUN_DIR/data.json``), unless ``allow_data_change``: then a warning is printed and the
        report records ``"data_changed"``; when another dataset has a class the run does not know.
    """
    run = RunDirectory.existing(run_dir)
    if split not in ("train", "test"):
        raise UserError(f"--split: expected train or test, got '{split}'")
    tree = load_yaml(run.config)
    tree["resume"] = None
    if device:
        tree["device"] = device
    cfg = resolve_config(tree)
    other = bool(data or data_settings)
    other_cfg = None
    if other:
        data_tree = _data_tree(tree, data, list(data_settings or []))
        data_tree.setdefault("image_size", None)
        other_cfg = resolve_config({**tree, "data": data_tree, "noise": {}})
    path = run.resolve_checkpoint(checkpoint)
    exp = _model_only(cfg, run) if other else None
    exp = exp or build_experiment(cfg, device=resolve_device(cfg.device))
    report_extra: dict = {}
    if other:
        from ..data.datasets import create_dataset, resize_images
        from ..data.format import FERData

        splits = create_dataset(other_cfg.data, other_cfg.data_options)
        if split not in splits:
            raise UserError(f"dataset '{other_cfg.data.name}' has no '{split}' split (has: {', '.join(splits)})")
        found = splits[split]
        mapping = label_mapping(list(found.class_names), list(exp.class_names),
                                where=f"dataset '{other_cfg.data.name}' ({other_cfg.data.root or 'no root'})")
        data = FERData(images=resize_images(np.asarray(found.images), exp.image_size),
                       labels=mapping[np.asarray(found.labels)], class_names=exp.class_names)
        changes = None
        report_extra = {"data": other_cfg.to_dict()["data"], "dataset_classes": list(found.class_names),
                        "scored_against": SCORED_AGAINST["other"].format(split=split)}
    else:
        data = exp.train if split == "train" else exp.test
        changes = check_data_fingerprint(run.data_fingerprint, data_fingerprint({split: data}), splits=(split,))
        if changes and not allow_data_change:
            raise UserError(f"{run.path}: the data changed since the run was trained ({'; '.join(changes)}); "
                            "the scores would not be the run's: restore the dataset, or give --allow-data-change")
        if changes:
            print(f"noisyfer: warning: evaluating on changed data ({'; '.join(changes)})", file=sys.stderr)
        report_extra = {"scored_against": SCORED_AGAINST[split]}
    state = load_method_weights(exp.method, path, map_location=exp.device)
    loader = TensorLoader(data, batch_size=cfg.train.eval_batch_size, device=exp.device)
    preds, _ = evaluate(exp.method, loader, Precision(cfg.train.amp, exp.device), exp.augment)
    report = classification_report(data.labels, preds, data.num_classes).as_dict()
    if not other and split == "train":
        report_extra.update(_other_train_labels(run.path, data, preds))
    report.update({"split": split, "checkpoint": str(path.relative_to(run.path) if path.is_relative_to(run.path) else path),
                   "epoch": state.get("epoch"), "num_samples": len(data), "class_names": list(data.class_names),
                   "data_changed": changes or None, **report_extra})
    stem = Path(checkpoint).stem if checkpoint not in ("best", "last") else checkpoint
    prefix = f"eval_{other_cfg.data.name}" if other else "eval"
    out = run.path / f"{prefix}_{split}_{stem}.json"
    atomic_write_bytes(out, (dumps(report, indent=2) + "\n").encode())
    return report, out


def _model_only(cfg, run: RunDirectory):
    """The run's method built from what ``RUN_DIR/data.json`` records (class names, training-set size, image
    size), without reading the run's own dataset (which need not be present to score another one); None for
    a run without that file."""
    from types import SimpleNamespace

    from ..models import create_backbone
    from .augment import Augmenter
    from .build import create_method, seed_everything

    if not run.data_fingerprint.is_file():
        return None
    train = json.loads(run.data_fingerprint.read_text())["splits"]["train"]
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed, deterministic=cfg.train.deterministic)
    size = int(train["image_shape"][0])
    augment = Augmenter(cfg.augment, image_size=size)
    backbone = create_backbone(cfg.model.backbone, num_classes=None, pretrained=None, **cfg.model.options)
    method = create_method(cfg.method, backbone=backbone, num_classes=len(train["class_names"]),
                           num_train=int(train["num_samples"]), options=cfg.method_options, augment=augment,
                           image_size=size)
    return SimpleNamespace(method=method.to(device), device=device, augment=augment,
                           class_names=tuple(train["class_names"]), image_size=size)


def _other_train_labels(run_path: Path, data, preds: np.ndarray) -> dict:
    """Accuracy on the training split against the run's training labels (when noise changed them) and the
    simulator's true labels (when known)."""
    out = {}
    labels_file = run_path / "train_labels.csv"
    if labels_file.is_file():
        from ..noise import load_noisy_labels

        given = load_noisy_labels(labels_file, num_samples=len(data), num_classes=data.num_classes)
        if np.any(given.labels != data.labels):
            out["accuracy_vs_training_labels"] = float(np.mean(preds == given.labels))
    if "true_label" in data.columns:
        out["accuracy_vs_true_labels"] = float(np.mean(preds == np.asarray(data.columns["true_label"])))
    return out


