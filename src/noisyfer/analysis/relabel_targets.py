"""Which classes a relabeling method moved each sample to, and which samples flip the most.

Paper 000's Fig. 3 shows, for images relabeled back and forth, one bar per class: how many times the
image was relabeled *to* that class. :func:`relabel_target_counts` computes those bars for every
sample of a label history (rows = epochs, see :mod:`noisyfer.analysis.relabel`), and
:func:`most_inconsistent` picks the samples to show.

Examples
--------
>>> history = np.array([[0, 1], [2, 1], [0, 1], [2, 0]])
>>> relabel_target_counts(history, num_classes=3).tolist()
[[1, 0, 2], [1, 0, 0]]
>>> most_inconsistent(history, 1).tolist()
[0]
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .relabel import flip_counts, return_counts

__all__ = ["most_inconsistent", "relabel_target_counts"]


def _history(history) -> np.ndarray:
    h = np.asarray(history)
    if h.ndim != 2 or not np.issubdtype(h.dtype, np.integer):
        raise UserError(f"label history must be an integer (epochs, samples) array, got {h.dtype} {h.shape}")
    return h.astype(np.int64)


def relabel_target_counts(history, *, num_classes: int) -> np.ndarray:
    """(N, C) number of times each sample's label changed *to* each class between consecutive rows."""
    h = _history(history)
    if h.size and (h.min() < 0 or h.max() >= num_classes):
        raise UserError(f"labels must lie in 0..{num_classes - 1}")
    changed = h[1:] != h[:-1]
    samples = np.broadcast_to(np.arange(h.shape[1]), changed.shape)[changed]
    counts = np.zeros((h.shape[1], num_classes), dtype=np.int64)
    np.add.at(counts, (samples, h[1:][changed]), 1)
    return counts


def most_inconsistent(history, k: int) -> np.ndarray:
    """Indices of up to ``k`` samples that changed label at least once, most returns to an earlier
    label first, then most changes, then lowest index."""
    h = _history(history)
    flips, returns = flip_counts(h), return_counts(h)
    order = np.lexsort((np.arange(h.shape[1]), -flips, -returns))
    return order[flips[order] > 0][:k]
