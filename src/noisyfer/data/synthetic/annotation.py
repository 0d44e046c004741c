"""Simulated annotations: a crowd of biased annotators (FERPlus-like votes) and a pseudo VA estimator.

Crowd model
-----------
A fixed pool of annotators (drawn once per seed) labels the faces; each face gets ``annotators``
distinct people from the pool. An annotator first *perceives* a class, drawn from the face's blend
(``label_dist``) pulled toward neutral for subtle faces (share ``0.3 * (1 - intensity)**2``), then
*reports* a label through a personal confusion matrix::

    E_j = (1 - e_j) I + e_j R_j,    R_j = rows of 0.6 * typical confusions + 0.3 * pref_j + 0.1 uniform

with error rate ``e_j`` (mean ``annotator_error``), ``pref_j`` a Dirichlet draw (the classes this
person over-uses) and the diagonal of ``R_j`` removed. ``crowd_label`` is the majority vote; ties are
broken uniformly at random by the seeded generator.
"""

from __future__ import annotations

import numpy as np

from .expressions import PSEUDO_VA_BIAS, VA_COORDINATES, confusion_affinity


def annotator_pool(
    rng: np.random.Generator, *, pool_size: int, num_classes: int, mean_error: float
) -> np.ndarray:
    """Confusion matrices (pool_size, C, C) of the annotator pool; row = perceived, column = reported."""
    c = num_classes
    if mean_error <= 0.0:
        error = np.zeros(pool_size)
    else:
        concentration = 12.0
        error = rng.beta(mean_error * concentration, (1.0 - mean_error) * concentration, pool_size)
    typical = confusion_affinity(c) + 0.05 * (1.0 - np.eye(c))
    typical /= typical.sum(1, keepdims=True)
    pref = rng.dirichlet(np.full(c, 0.7), pool_size)  # (P, C)
    off = 0.6 * typical[None] + 0.3 * pref[:, None, :] + 0.1 / c
    off = off * (1.0 - np.eye(c))[None]
    off /= off.sum(2, keepdims=True)
    eye = np.eye(c)[None]
    return (1.0 - error)[:, None, None] * eye + error[:, None, None] * off


def crowd_votes(
    rng: np.random.Generator,
    label_dist: np.ndarray,
    intensity: np.ndarray,
    pool: np.ndarray,
    *,
    annotators: int,
    neutral_class: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Votes (N, C) int64 summing to ``annotators`` per row, and the majority label (N,) int64."""
    n, c = label_dist.shape
    pull = (0.3 * (1.0 - intensity) ** 2)[:, None]
    perceive_p = (1.0 - pull) * label_dist
    perceive_p[:, neutral_class] += pull[:, 0]

    # distinct annotators per face: the first `annotators` of a random permutation of the pool
    who = np.argsort(rng.random((n, pool.shape[0])), axis=1)[:, :annotators]
    perceived = _draw(rng, np.repeat(perceive_p[:, None, :], annotators, axis=1))
    reported = _draw(rng, pool[who, perceived])  # (N, A)

    votes = np.zeros((n, c), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), annotators), reported.ravel()), 1)
    tie_break = rng.random((n, c)) * 0.5  # < 1: only reorders classes with equal votes
    crowd = np.argmax(votes + tie_break, axis=1).astype(np.int64)
    return votes, crowd


def pseudo_valence_arousal(
    rng: np.random.Generator,
    va: np.ndarray,
    label_dist: np.ndarray,
    *,
    prior_mean: np.ndarray,
    noise: float | tuple[float, float],
    shrinkage: float,
) -> np.ndarray:
    """Estimator-like VA (N, 2): shrunk toward ``prior_mean``, class-biased, noisy, in [-1, 1].

    ``noise``: one std for both columns, or a (valence, arousal) pair; either way one normal draw per
    value, so the rest of the generator's random stream does not depend on it."""
    c = label_dist.shape[1]
    bias = label_dist @ PSEUDO_VA_BIAS[:c]
    est = prior_mean + (1.0 - shrinkage) * (va - prior_mean) + bias
    scale = noise if np.isscalar(noise) else np.asarray(noise, dtype=np.float64)
    est = est + rng.normal(0.0, scale, va.shape)
    return np.clip(est, -1.0, 1.0)


def va_agreement(true: np.ndarray, estimate: np.ndarray) -> dict[str, dict[str, float]]:
    """Concordance correlation (CCC) and RMSE of an (N, 2) valence/arousal ``estimate`` against ``true``,
    the measures VA regressors report: ``{"valence": {"ccc": ..., "rmse": ...}, "arousal": {...}}``.

    >>> t = np.array([[0.0, 0.2], [0.5, -0.2], [-0.5, 0.0]])
    >>> va_agreement(t, t)["valence"]["ccc"], va_agreement(t, t + 0.1)["arousal"]["rmse"]
    (1.0, 0.1)
    """
    out = {}
    for j, name in enumerate(("valence", "arousal")):
        x, y = np.asarray(true, np.float64)[:, j], np.asarray(estimate, np.float64)[:, j]
        cov = np.mean((x - x.mean()) * (y - y.mean()))
        ccc = 2.0 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        out[name] = {"ccc": round(float(ccc), 6), "rmse": round(float(np.sqrt(np.mean((x - y) ** 2))), 6)}
    return out


def prior_mean_va(prior: np.ndarray) -> np.ndarray:
    """Mean true VA of a prototypical face at medium intensity under the class prior."""
    return (prior @ VA_COORDINATES[: prior.shape[0]]) * (0.35 + 0.65 * 0.5)


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Categorical draw along the last axis of ``probs``."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((cdf < u).sum(-1), probs.shape[-1] - 1)
