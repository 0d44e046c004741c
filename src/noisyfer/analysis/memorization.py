"""Memorization of noisy labels: training accuracy against the given and against the true labels.

A network trained on noisy labels first fits the clean majority, then memorizes the wrong labels
(ELR, SMEC Fig. 5). Per epoch the engine records, over the training predictions of the epoch
(``metrics.jsonl``):

* ``train_acc_given``: predictions equal to the given (possibly wrong) labels;
* ``train_acc_true``: predictions equal to the true labels (simulator or pre-noise labels);
* ``noisy_memorized``: among mislabeled samples, predictions equal to the wrong given label;
* ``noisy_corrected``: among mislabeled samples, predictions equal to the true label.

:func:`agreement` computes the same four numbers from arrays (e.g. predictions of a checkpoint on
the un-augmented training images); :func:`memorization_curves` reads them from epoch records, with
NaN where an epoch lacks a quantity (no ground truth, or a method that returns no logits).

Examples
--------
>>> agreement(np.array([0, 1, 1, 2]), given=np.array([0, 1, 2, 2]), true=np.array([0, 2, 1, 2]))
{'train_acc_given': 0.75, 'train_acc_true': 0.75, 'noisy_memorized': 0.5, 'noisy_corrected': 0.5}
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ["CURVE_KEYS", "agreement", "memorization_curves"]

CURVE_KEYS = ("train_acc_given", "train_acc_true", "noisy_memorized", "noisy_corrected")


def agreement(predictions, *, given, true=None) -> dict[str, float]:
    """The four memorization numbers of ``predictions`` (N,) against ``given`` and ``true`` labels.

    Without ``true`` only ``train_acc_given`` is returned; without mislabeled samples the two
    ``noisy_*`` numbers are NaN.
    """
    pred, given = np.asarray(predictions, dtype=np.int64), np.asarray(given, dtype=np.int64)
    if pred.ndim != 1 or pred.shape != given.shape:
        raise UserError(f"predictions and given labels must be (N,) of one length, got {pred.shape}, {given.shape}")
    if pred.size == 0:
        raise UserError("agreement of an empty set of predictions")
    out = {"train_acc_given": float((pred == given).mean())}
    if true is None:
        return out
    true = np.asarray(true, dtype=np.int64)
    if true.shape != given.shape:
        raise UserError(f"true labels have shape {true.shape}, expected {given.shape}")
    noisy = given != true
    out["train_acc_true"] = float((pred == true).mean())
    n = int(noisy.sum())
    out["noisy_memorized"] = float((pred[noisy] == given[noisy]).sum() / n) if n else float("nan")
    out["noisy_corrected"] = float((pred[noisy] == true[noisy]).sum() / n) if n else float("nan")
    return out


def memorization_curves(records: list[dict]) -> dict[str, np.ndarray]:
    """Per-epoch arrays from ``metrics.jsonl`` records: ``epoch``, the four :data:`CURVE_KEYS`,
    ``test_accuracy`` and ``test_balanced_accuracy`` (NaN where a record lacks the key)."""
    keys = ("test_accuracy", "test_balanced_accuracy", *CURVE_KEYS)
    out = {"epoch": np.array([int(r["epoch"]) for r in records], dtype=np.int64)}
    for key in keys:
        out[key] = np.array([np.nan if r.get(key) is None else float(r[key]) for r in records], dtype=np.float64)
    return out
