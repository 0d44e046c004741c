"""What a per-sample label-issue score is, in one place: a *suspicion*, higher = more likely mislabeled.

Every analysis that ranks training samples by how likely their given label is wrong (``noisyfer
suspects``, the run report's suspects, the noise-detection AUROC, ``benchmarks/bench_label_issues.py``)
computes its score here, so all of them agree on its direction and on what each kind means:

``self_confidence``
    ``1 - p(given label)`` under a model's predicted probabilities (cleanlab's "self-confidence",
    turned into a suspicion). In [0, 1].
``margin``
    ``max_{k != given} p_k - p(given)``: how far the best other class beats the given one (cleanlab's
    "normalized margin", turned around). In [-1, 1]; above 0 the model prefers another class.
``method``
    The training method's own per-sample signal, ``-clean_score`` of its last epoch record (see
    :attr:`noisyfer.methods.base.Method.signal`: SCN's attention weight, RUL's relative certainty,
    DMUE's uncertainty score, LRN's logit noise, NCCTFER's confidence margin, ELR's and SMEC's target
    agreement, LDLVA's 1 - lambda). NaN for a sample the method never drew (it cannot vouch for it
    either way); such samples rank last.

The probabilities may be the run's own on its training images (*in-sample*: a network that memorised
a wrong label is confident in it, so in-sample scores miss the memorised flips) or out-of-fold
(``noisyfer suspects --cv K``: every sample scored by a model that never trained on it).

Examples
--------
>>> probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
>>> given = np.array([0, 0, 1])
>>> score_samples("self_confidence", probs=probs, given=given).round(2).tolist()
[0.3, 0.9, 0.5]
>>> score_samples("margin", probs=probs, given=given).round(2).tolist()
[-0.5, 0.5, -0.2]
>>> rank_suspects(method_suspicion(np.array([0.9, np.nan, 0.1])), top=3).tolist()
[2, 0, 1]
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ["SCORES", "check_probs", "method_suspicion", "rank_suspects", "score_samples", "suggested_labels"]

#: The kinds of score (``noisyfer suspects --score``).
SCORES = ("self_confidence", "margin", "method")


def check_probs(probs, *, given, source: str = "probs") -> tuple[np.ndarray, np.ndarray]:
    """``(probs, given)`` as float64 (N, C) and int64 (N,), or a :class:`UserError` naming ``source``.

    Rows must be probabilities (finite, non-negative, summing to 1 within 1e-3) and every given label
    a column of ``probs``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    given = np.asarray(given, dtype=np.int64)
    if probs.ndim != 2 or given.shape != (probs.shape[0],):
        raise UserError(f"{source}: expected probabilities of shape ({given.size}, C) for {given.size} training "
                        f"samples, got shape {probs.shape}")
    if probs.shape[1] < 2:
        raise UserError(f"{source}: needs at least 2 classes, got {probs.shape[1]}")
    if given.size and (given.min() < 0 or given.max() >= probs.shape[1]):
        raise UserError(f"{source}: given labels must lie in 0..{probs.shape[1] - 1} (one column per class)")
    if not np.isfinite(probs).all() or (probs < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(probs).all(1) | (probs < 0).any(1))[0])
        raise UserError(f"{source}: row {bad} is not a probability vector (negative or non-finite values)")
    sums = probs.sum(1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
    if off.size:
        raise UserError(f"{source}: row {int(off[0])} sums to {sums[off[0]]:.4f}, not 1 (softmax the logits first)")
    return probs, given


def score_samples(kind: str, *, probs=None, given=None, clean_score=None) -> np.ndarray:
    """The suspicion (higher = more likely mislabeled) of every sample under score ``kind``.

    Parameters
    ----------
    kind
        One of :data:`SCORES`.
    probs, given
        (N, C) predicted probabilities and (N,) given labels (``self_confidence``, ``margin``).
    clean_score
        (N,) the method's recorded ``clean_score`` (``method``).
    """
    if kind not in SCORES:
        raise UserError(f"--score: expected one of {', '.join(SCORES)}, got {kind!r}")
    if kind == "method":
        if clean_score is None:
            raise UserError("--score method: the run's method records no per-sample signal (clean_score)")
        return method_suspicion(clean_score)
    probs, given = check_probs(probs, given=given)
    rows = np.arange(given.size)
    own = probs[rows, given]
    if kind == "self_confidence":
        return 1.0 - own
    others = probs.copy()
    others[rows, given] = -np.inf
    return others.max(1) - own


def method_suspicion(clean_score) -> np.ndarray:
    """``-clean_score`` (NaN stays NaN: the method never scored that sample)."""
    score = np.asarray(clean_score, dtype=np.float64).reshape(-1)
    return -score


def suggested_labels(probs, *, given) -> np.ndarray:
    """The most probable class other than the given one, per sample."""
    probs, given = check_probs(probs, given=given)
    others = probs.copy()
    others[np.arange(given.size), given] = -np.inf
    return others.argmax(1)


def rank_suspects(suspicion, *, top: int) -> np.ndarray:
    """Indices of the ``top`` most suspicious samples (ties: lower index first; NaN last)."""
    suspicion = np.asarray(suspicion, dtype=np.float64)
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    key = np.where(np.isnan(suspicion), -np.inf, suspicion)
    order = np.lexsort((np.arange(suspicion.size), np.isnan(suspicion), -key))
    return order[:top]
