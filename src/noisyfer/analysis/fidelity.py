"""Label-distribution fidelity: how close learned or constructed label distributions are to the truth.

Methods that learn or build a label distribution per training sample record it as ``label_dist``
(LDLVA's valence-arousal neighbour distributions, ELR/SMEC's normalised moving-average targets). The
simulator knows each face's true distribution (its blend of expressions, column ``label_dist``).
This module compares the two per sample:

* ``KL(truth || learned)`` in nats, with ``learned`` clipped at ``eps`` and renormalised so a zero
  where the truth has mass costs ``log(1/eps)`` instead of infinity;
* total variation ``0.5 * sum |truth - learned|`` (in [0, 1]);
* agreement of the two argmaxes (the top class);
* the same KL for the uniform distribution, a know-nothing reference.

:func:`run_label_distribution_closeness` reads both from a run directory and adds the KL of the one-hot
given labels, the reference a method has to beat.

Rows that are not distributions (a method that never saw the sample records zeros) are left out and
counted.

Examples
--------
>>> truth = np.array([[0.5, 0.5], [1.0, 0.0]])
>>> learned = np.array([[0.5, 0.5], [0.5, 0.5]])
>>> kl_divergence(truth, learned).round(4).tolist()   # second row: 1 * log(1 / 0.5)
[0.0, 0.6931]
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import UserError

__all__ = ["kl_divergence", "label_distribution_fidelity", "run_label_distribution_closeness", "valid_distributions"]


def _matrix(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise UserError(f"{name} must be (N, C), got shape {array.shape}")
    return array


def valid_distributions(dist, *, atol: float = 1e-3) -> np.ndarray:
    """(N,) True where a row is finite, non-negative and sums to 1 (within ``atol``)."""
    dist = _matrix(dist, "distributions")
    finite = np.isfinite(dist).all(1)
    safe = np.where(np.isfinite(dist), dist, -1.0)
    return finite & (safe >= 0).all(1) & (np.abs(safe.sum(1) - 1.0) <= atol)


def kl_divergence(p, q, *, eps: float = 1e-8) -> np.ndarray:
    """(N,) ``KL(p || q)`` per row in nats; ``q`` is clipped at ``eps`` and renormalised."""
    p, q = _matrix(p, "p"), _matrix(q, "q")
    if p.shape != q.shape:
        raise UserError(f"p and q differ in shape: {p.shape} vs {q.shape}")
    q = np.clip(q, eps, None)
    q = q / q.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return terms.sum(1)


def label_distribution_fidelity(learned, truth, *, eps: float = 1e-8) -> dict:
    """Fidelity of ``learned`` (N, C) to ``truth`` (N, C) label distributions (see the module docstring).

    Returns
    -------
    dict
        ``num_samples``, ``num_valid`` (rows of ``learned`` that are distributions), ``kl_mean``,
        ``kl_median``, ``tv_mean``, ``top1_agreement``, ``kl_uniform_mean`` (the uniform reference).
        The statistics are NaN when no row is valid.
    """
    learned, truth = _matrix(learned, "learned"), _matrix(truth, "truth")
    if learned.shape != truth.shape:
        raise UserError(f"learned distributions {learned.shape} and true ones {truth.shape} differ in shape")
    if not valid_distributions(truth).all():
        raise UserError("true label distributions must be non-negative rows summing to 1")
    valid = valid_distributions(learned)
    out = {"num_samples": int(learned.shape[0]), "num_valid": int(valid.sum())}
    nan = float("nan")
    if not valid.any():
        return {**out, "kl_mean": nan, "kl_median": nan, "tv_mean": nan, "top1_agreement": nan,
                "kl_uniform_mean": nan}
    p, q = truth[valid], learned[valid]
    kl = kl_divergence(p, q, eps=eps)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return {**out, "kl_mean": float(kl.mean()), "kl_median": float(np.median(kl)),
            "tv_mean": float(0.5 * np.abs(p - q).sum(1).mean()),
            "top1_agreement": float((p.argmax(1) == q.argmax(1)).mean()),
            "kl_uniform_mean": float(kl_divergence(p, uniform, eps=eps).mean())}


def run_label_distribution_closeness(run_dir: str | os.PathLike, *, epoch: int | None = None) -> dict:
    """How close a run's learned label distributions are to the truth, against its one-hot given labels.

    Parameters
    ----------
    run_dir
        A run of a method that records ``label_dist`` per sample (``ldlva``, ``elr``, ``smec``), on a
        training set with true distributions (the simulator's ``label_dist`` column).
    epoch
        The epoch whose ``samples/epoch_NNN.npz`` is read (the last one recorded by default).

    Returns
    -------
    dict
        :func:`noisyfer.methods.label_distribution.compare_label_distributions` of the recorded
        distributions, the training set's true ones and the run's given (noisy) labels; empty when the
        run records no ``label_dist``.
    """
    from ..methods.label_distribution import compare_label_distributions
    from .rundata import RunData

    run = RunData(run_dir)
    record = run.sample_record(epoch)
    if "label_dist" not in record:
        return {}
    truth = run.train.columns.get("label_dist")
    if truth is None:
        raise UserError(f"{run_dir}: the training set has no true label distributions (column label_dist; "
                        "the simulator has them, a real dataset does not)")
    return compare_label_distributions(record["label_dist"], truth, run.given_labels)
