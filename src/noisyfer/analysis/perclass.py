"""Per-class accuracy, balanced accuracy and row-normalised confusion matrices.

Per-class accuracy is the recall of each class (diagonal over row sum); balanced accuracy is its mean
over the classes present (SMEC's "balanced accuracy", Brodersen et al. 2010). A class without
samples has no accuracy (``None`` / NaN, shown "n/a"), never 0. The engine computes the same numbers
every epoch (:mod:`noisyfer.engine.metrics`); these helpers work on any confusion matrix or on
predictions, e.g. of a checkpoint on another split.

Examples
--------
>>> m = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
>>> per_class_accuracy(m), balanced_accuracy(m)
([0.75, 0.5, None], 0.625)
"""

from __future__ import annotations

import numpy as np

from ..engine.metrics import ClassificationReport, confusion_matrix
from ..errors import UserError

__all__ = ["balanced_accuracy", "classification_from_predictions", "normalized_confusion", "per_class_accuracy"]


def _confusion(confusion) -> np.ndarray:
    m = np.asarray(confusion)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise UserError(f"a confusion matrix must be square (C, C), got shape {m.shape}")
    if (m < 0).any():
        raise UserError("a confusion matrix holds counts (>= 0)")
    return m.astype(np.int64)


def per_class_accuracy(confusion) -> list[float | None]:
    """Recall of each class (``None`` for a class without samples)."""
    return ClassificationReport.from_confusion(_confusion(confusion)).per_class_accuracy


def balanced_accuracy(confusion) -> float:
    """Mean per-class accuracy over the classes present (NaN when none is)."""
    return ClassificationReport.from_confusion(_confusion(confusion)).balanced_accuracy


def normalized_confusion(confusion) -> np.ndarray:
    """Rows divided by their sums (the share of each true class predicted as each class); NaN rows
    for classes without samples."""
    m = _confusion(confusion).astype(np.float64)
    support = m.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, m / np.where(support > 0, support, 1), np.nan)


def classification_from_predictions(targets, predictions, num_classes: int) -> dict:
    """Accuracy, balanced and per-class accuracy and the confusion matrix of ``predictions``."""
    return ClassificationReport.from_confusion(confusion_matrix(targets, predictions, num_classes)).as_dict()
