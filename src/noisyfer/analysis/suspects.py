"""Suspected mislabels: rank training samples by how little a trained model believes their label.

The score of a sample is ``1 - p(given label)`` under the run's model on the un-augmented image
(cleanlab's "self-confidence", as a suspicion: higher = more likely mislabeled); the suggested label
is the model's most probable class *other than* the given one. Best-epoch weights are the default
because a network memorizes wrong labels later in training.

Examples
--------
>>> probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
>>> score, suggested = suspicion(probs, given=np.array([0, 0, 1]))
>>> score.round(2).tolist(), suggested.tolist()
([0.3, 0.9, 0.5], [1, 2, 2])
>>> rank_suspects(score, top=2).tolist()
[1, 2]
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ["precision_at", "rank_suspects", "suspicion"]


def suspicion(probs, *, given) -> tuple[np.ndarray, np.ndarray]:
    """``(score, suggested)``: ``1 - probs[i, given_i]`` and the most probable other class."""
    probs = np.asarray(probs, dtype=np.float64)
    given = np.asarray(given, dtype=np.int64)
    if probs.ndim != 2 or given.shape != (probs.shape[0],):
        raise UserError(f"probs must be (N, C) and given (N,), got {probs.shape} and {given.shape}")
    if probs.shape[1] < 2:
        raise UserError("suspicion needs at least 2 classes")
    if given.size and (given.min() < 0 or given.max() >= probs.shape[1]):
        raise UserError(f"given labels must lie in 0..{probs.shape[1] - 1}")
    rows = np.arange(given.size)
    score = 1.0 - probs[rows, given]
    others = probs.copy()
    others[rows, given] = -np.inf
    return score, others.argmax(1)


def rank_suspects(score, *, top: int) -> np.ndarray:
    """Indices of the ``top`` highest scores (ties: lower index first)."""
    score = np.asarray(score, dtype=np.float64)
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    return np.lexsort((np.arange(score.size), -score))[:top]


def precision_at(indices, noisy) -> float:
    """Share of ``indices`` that are mislabeled (NaN for none)."""
    indices = np.asarray(indices, dtype=np.int64)
    noisy = np.asarray(noisy, dtype=bool)
    return float(noisy[indices].mean()) if indices.size else float("nan")
