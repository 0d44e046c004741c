"""Classification metrics: accuracy, balanced accuracy, per-class accuracy, confusion matrix.

Per-class accuracy is the recall of each class (its diagonal entry over its row of the confusion
matrix); balanced accuracy is their mean over the classes present in the evaluated labels, as in
SMEC's "mean accuracy". A class absent from the labels has no accuracy (``None``), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def confusion_matrix(targets: Tensor | np.ndarray, predictions: Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """``m[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    t = torch.as_tensor(targets).long().flatten().cpu()
    p = torch.as_tensor(predictions).long().flatten().cpu()
    if t.shape != p.shape:
        raise ValueError(f"{t.numel()} targets but {p.numel()} predictions")
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).numpy()


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    balanced_accuracy: float
    per_class_accuracy: list[float | None]
    confusion: list[list[int]]
    num_samples: int

    @classmethod
    def from_confusion(cls, confusion: np.ndarray) -> "ClassificationReport":
        confusion = np.asarray(confusion, dtype=np.int64)
        support = confusion.sum(1)
        total = int(support.sum())
        correct = int(np.trace(confusion))
        per_class = [float(confusion[i, i] / support[i]) if support[i] else None for i in range(len(support))]
        present = [a for a in per_class if a is not None]
        return cls(
            accuracy=correct / total if total else float("nan"),
            balanced_accuracy=float(np.mean(present)) if present else float("nan"),
            per_class_accuracy=per_class,
            confusion=confusion.tolist(),
            num_samples=total,
        )

    def as_dict(self, prefix: str = "") -> dict:
        return {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}balanced_accuracy": self.balanced_accuracy,
            f"{prefix}per_class_accuracy": self.per_class_accuracy,
            f"{prefix}confusion": self.confusion,
        }


def classification_report(targets, predictions, num_classes: int) -> ClassificationReport:
    return ClassificationReport.from_confusion(confusion_matrix(targets, predictions, num_classes))


class RunningAgreement:
    """Counts, on the device, how often training predictions agree with reference label sets.

    Used for memorization: agreement with the given (noisy) labels vs with the true labels, over
    all samples and over the samples whose given label is wrong. Nothing is read back until
    :meth:`compute`, so the training step never waits on the device.
    """

    def __init__(self, *, given: Tensor, true: Tensor | None):
        self.given = given
        self.true = true
        self.noisy_mask = (given != true) if true is not None else None
        self._sums = None

    def reset(self) -> None:
        self._sums = None

    @torch.no_grad()
    def update(self, logits: Tensor, indices: Tensor) -> None:
        pred = logits.argmax(1)
        idx = indices.to(self.given.device)
        pred = pred.to(self.given.device)
        hit_given = pred == self.given[idx]
        parts = [torch.ones_like(hit_given).sum(), hit_given.sum()]
        if self.true is not None:
            hit_true = pred == self.true[idx]
            noisy = self.noisy_mask[idx]
            parts += [hit_true.sum(), noisy.sum(), (hit_given & noisy).sum(), (hit_true & noisy).sum()]
        sums = torch.stack(parts).double()
        self._sums = sums if self._sums is None else self._sums + sums

    def compute(self) -> dict[str, float]:
        if self._sums is None:
            return {}
        s = self._sums.tolist()
        out = {"train_acc_given": s[1] / s[0] if s[0] else float("nan")}
        if self.true is not None:
            out["train_acc_true"] = s[2] / s[0] if s[0] else float("nan")
            if s[3]:
                # Among samples whose given label is wrong: predicted the wrong (given) label
                # = memorized; predicted the true label = corrected.
                out["noisy_memorized"] = s[4] / s[3]
                out["noisy_corrected"] = s[5] / s[3]
        return out
