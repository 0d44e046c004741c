"""Instance-dependent label noise: ambiguous samples flip more often, and to the classes they resemble.

Input is a per-sample class-probability matrix ``P`` (N, C): the simulator's true ``label_dist`` or a
trained model's softmax predictions on real data. With ``y`` the given labels and ``p`` the rate:

1. Ambiguity weight ``w_i = floor + (1 - P[i, y_i])`` (``floor`` = :data:`INSTANCE_WEIGHT_FLOOR`):
   the probability mass a sample puts on *other* classes, plus a floor so that prototypical samples
   keep a small chance to flip (annotators also err on clear faces) and the weights never all vanish.
2. Flip probability ``q_i = min(1, s * w_i)``, with the scale ``s`` chosen so that ``mean(q) = p``
   exactly. Without clipping ``s = p / mean(w)``; samples whose ``s * w_i`` would exceed 1 are capped
   at 1 and the excess is spread over the others in proportion to their weights ("water filling",
   solved in closed form after one sort). The expected flip rate is therefore exactly ``p``.
3. A flipped sample's new label is drawn from ``P[i]`` with ``y_i`` removed and renormalised, so it
   follows the sample's own confusions. Where that row has no mass off ``y_i`` (a one-hot row), it
   is drawn from the class-level prior of ``y_i`` (the average off-class distribution of all
   samples labelled ``y_i``), and where the whole class has none, uniformly from the other classes.

With ``exact=True`` exactly ``round(p * N)`` samples flip, drawn without replacement with
probability proportional to ``w_i`` (successive sampling, via exponential keys ``E_i / w_i``).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .result import exact_count

#: Weight every sample gets on top of its off-class probability mass (step 1 of the module doc).
INSTANCE_WEIGHT_FLOOR = 0.1

#: Off-class mass at or below this counts as none (one-hot rows stored as float32).
_NO_MASS = 1e-12


def check_probs(probs: object, num_samples: int, num_classes: int) -> np.ndarray:
    """``probs`` as float64 (N, C) with rows renormalised; :class:`UserError` naming ``noise.probs``."""
    arr = np.asarray(probs)
    if arr.shape != (num_samples, num_classes):
        raise UserError(
            f"noise.probs must have shape ({num_samples}, {num_classes}) (samples, classes), got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"noise.probs must be floating-point probabilities, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad_rows = ~np.isfinite(arr).all(axis=1) | (arr < 0).any(axis=1)
    if bad_rows.any():
        i = int(np.flatnonzero(bad_rows)[0])
        raise UserError(
            f"noise.probs row {i} has negative or non-finite values ({arr[i].tolist()}); "
            "pass softmax probabilities, not logits"
        )
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-3
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise UserError(
            f"noise.probs row {i} sums to {sums[i]:.6g}, expected 1; pass probabilities (softmax), "
            "not logits or vote counts"
        )
    return arr / sums[:, None]


def ambiguity_weights(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``w_i = floor + sum_{c != y_i} P[i, c]`` (module doc, step 1)."""
    off_mass = _off_class(labels, probs).sum(axis=1)
    return INSTANCE_WEIGHT_FLOOR + off_mass


def flip_probabilities(weights: np.ndarray, rate: float) -> np.ndarray:
    """``q_i = min(1, s * w_i)`` with ``s`` such that ``mean(q) == rate`` (module doc, step 2).

    Examples
    --------
    Weights 1, 1, 1, 7 at rate 0.5: ``s = 2 / 10`` would give the last sample 1.4, so it is capped
    at 1 and the remaining expected flip (1 of 2) is shared by the other three:

    >>> flip_probabilities(np.array([1.0, 1.0, 1.0, 7.0]), 0.5).round(4).tolist()
    [0.3333, 0.3333, 0.3333, 1.0]
    """
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    if n == 0 or rate == 0.0:
        return np.zeros(n)
    if (w <= 0).any():
        raise ValueError("flip weights must be positive")
    target = rate * n
    sorted_w = np.sort(w)[::-1]
    tail = np.cumsum(sorted_w[::-1])[::-1]  # tail[k] = sum of all but the k largest weights
    capped = np.arange(n)
    scale = (target - capped) / tail
    # k capped samples is consistent when the largest uncapped one stays <= 1; the smallest such k wins.
    consistent = (scale >= 0) & (scale * sorted_w <= 1.0 + 1e-12)
    k = int(np.flatnonzero(consistent)[0])
    return np.minimum(1.0, scale[k] * w)


def instance_noise(
    labels: np.ndarray, probs: np.ndarray, *, rate: float, exact: bool, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Noisy labels and JSON params for instance-dependent noise (see the module doc)."""
    n = probs.shape[0]
    weights = ambiguity_weights(labels, probs)
    if exact:
        num_flips = int(exact_count(rate, n))
        keys = rng.exponential(size=n) / weights
        flip = np.zeros(n, dtype=bool)
        flip[np.argsort(keys, kind="stable")[:num_flips]] = True
    else:
        q = flip_probabilities(weights, rate)
        flip = rng.random(n) < q
    targets, no_mass = _confusion_targets(labels, probs)
    noisy = labels.copy()
    idx = np.flatnonzero(flip)
    noisy[idx] = _sample_rows(targets[idx], rng)
    params = {
        "weight_floor": INSTANCE_WEIGHT_FLOOR,
        "samples_without_off_class_mass": int(no_mass.sum()),
        "flipped_without_off_class_mass": int(no_mass[idx].sum()),
    }
    return noisy, params


def _off_class(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    off = probs.copy()
    off[np.arange(labels.size), labels] = 0.0
    return off


def _confusion_targets(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised new-label distributions (N, C) with zero mass on the given class (step 3)."""
    num_classes = probs.shape[1]
    off = _off_class(labels, probs)
    no_mass = off.sum(axis=1) <= _NO_MASS
    onehot = np.eye(num_classes)[labels]
    prior = onehot.T @ (off / np.maximum(off.sum(axis=1, keepdims=True), _NO_MASS))
    prior_empty = prior.sum(axis=1) <= _NO_MASS
    prior[prior_empty] = 1.0 - np.eye(num_classes)[prior_empty]
    off[no_mass] = prior[labels[no_mass]]
    return off, no_mass


def _sample_rows(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of non-negative ``weights``; zero-weight classes are never drawn."""
    if weights.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(weights, axis=1)
    # (1 - u) lies in (0, 1], so the target is > 0 and the first class reaching it has positive mass.
    target = (1.0 - rng.random(weights.shape[0])) * cum[:, -1]
    return (cum < target[:, None]).sum(axis=1).astype(np.int64)
