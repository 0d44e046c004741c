"""Suspected mislabels: rank training samples by how little a trained model believes their label.

The score of a sample is ``1 - p(given label)`` under the run's model on the un-augmented image
(cleanlab's "self-confidence", as a suspicion: higher = more likely mislabeled; the kinds of score
are defined in :mod:`noisyfer.analysis.scores`); the suggested label
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

from .scores import rank_suspects, score_samples, suggested_labels

__all__ = ["precision_at", "rank_suspects", "suspicion"]


def suspicion(probs, *, given) -> tuple[np.ndarray, np.ndarray]:
    """``(score, suggested)``: the ``self_confidence`` suspicion ``1 - probs[i, given_i]`` (see
    :mod:`noisyfer.analysis.scores`) and the most probable other class."""
    return score_samples("self_confidence", probs=probs, given=given), suggested_labels(probs, given=given)


def precision_at(indices, noisy) -> float:
    """Share of ``indices`` that are mislabeled (NaN for none)."""
    indices = np.asarray(indices, dtype=np.int64)
    noisy = np.asarray(noisy, dtype=bool)
    return float(noisy[indices].mean()) if indices.size else float("nan")
