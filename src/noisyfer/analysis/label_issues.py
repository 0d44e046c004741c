"""Confident learning (cleanlab) on predicted probabilities: which labels are wrong, how many, which way.

cleanlab (Northcutt et al., "Confident Learning", JAIR 2021) counts, for every pair (given label i,
true class j), the samples labelled i whose predicted probability of j is above class j's average
self-confidence (the *confident joint*), calibrates the counts to the dataset size, and from that
estimates the joint distribution of given and true labels. From it this module reports:

* ``issues``: which samples (cleanlab's ``find_label_issues``: from each off-diagonal cell (i, j) of
  the confident joint, that many samples labelled i, those with the largest margin of j over i);
* ``num_issues``: their number, the estimated number of wrong labels and the default length of a
  suspects list. (cleanlab's ``num_label_issues`` counts the off-diagonal of the confident joint
  instead, uncalibrated by default; on simulated 85 %-accurate probabilities it missed a fifth of
  the flips where the flagged count was within 5 %: see ``tests/test_label_issues.py``);
* ``noise_rate``: the estimated fraction of wrong labels, ``1 - trace(joint)``;
* ``transition``: the estimated noise transition matrix in noisyfer's convention (row = true class,
  column = given label, rows sum to 1: the same layout as a noise file's ``transition``); cleanlab's
  ``noise_matrix`` is its transpose.

The probabilities must be *out-of-sample* for the estimates to mean anything (``noisyfer suspects
--cv K``, or another model's predictions with ``--probs``): on its own training images a network
that memorised a wrong label predicts it, and the estimates shrink towards zero.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> true = np.repeat(np.arange(3), 100)
>>> given = true.copy(); given[:30] = 1                  # 30 of class 0 labelled 1
>>> probs = np.full((300, 3), 0.05); probs[np.arange(300), true] = 0.9
>>> found = estimate_label_issues(labels=given, probs=probs)
>>> found.num_issues, int(found.issues[:30].sum()), round(found.noise_rate, 2)
(30, 30, 0.1)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .scores import check_probs, suggested_labels

__all__ = ["LabelIssues", "estimate_label_issues", "load_noise_rate_estimate"]


@dataclass
class LabelIssues:
    """cleanlab's estimates on one set of probabilities (see the module docstring).

    Attributes
    ----------
    num_issues
        Estimated number of wrong labels.
    issues
        bool (N,): the samples cleanlab flags.
    noise_rate
        Estimated fraction of wrong labels.
    transition
        (C, C) estimated P(given label = k | true class = j) at ``[j, k]``.
    joint
        (C, C) estimated joint P(true = j, given = k) at ``[j, k]`` (sums to 1).
    confident_joint
        (C, C) int counts of the (calibrated) confident joint, true class j, given label k at ``[j, k]``.
    suggested
        (N,) the most probable class other than the given one.
    """

    num_issues: int
    issues: np.ndarray
    noise_rate: float
    transition: np.ndarray
    joint: np.ndarray
    confident_joint: np.ndarray
    suggested: np.ndarray

    def to_json(self, class_names: tuple[str, ...] | None = None) -> dict:
        """The estimates (not the per-sample arrays) as JSON-ready builtins."""
        out = {"num_samples": int(self.issues.size), "estimated_num_issues": int(self.num_issues),
               "estimated_noise_rate": float(self.noise_rate),
               "transition": np.round(self.transition, 6).tolist(), "joint": np.round(self.joint, 6).tolist(),
               "confident_joint": self.confident_joint.astype(int).tolist(),
               "convention": "row = true class, column = given label"}
        if class_names is not None:
            out["class_names"] = list(class_names)
        return out


def estimate_label_issues(*, labels, probs, source: str = "probs") -> LabelIssues:
    """cleanlab's confident-learning estimates for given ``labels`` (N,) and ``probs`` (N, C).

    Raises
    ------
    UserError
        Probabilities of the wrong shape or not probabilities (naming ``source``), or a class with no
        training sample (cleanlab needs every class of ``probs`` among the labels).
    """
    from cleanlab.count import estimate_joint, estimate_py_and_noise_matrices_from_probabilities
    from cleanlab.filter import find_label_issues

    probs, labels = check_probs(probs, given=labels, source=source)
    counts = np.bincount(labels, minlength=probs.shape[1])
    if (counts == 0).any():
        absent = np.flatnonzero(counts == 0).tolist()
        raise UserError(f"{source}: class(es) {absent} have no training sample; confident learning needs every "
                        "class of the probabilities among the given labels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about small classes; the counts say it all
        _, noise_matrix, _, confident_joint = estimate_py_and_noise_matrices_from_probabilities(labels, probs)
        joint = estimate_joint(labels, probs, confident_joint=confident_joint)
        issues = np.asarray(find_label_issues(labels, probs, confident_joint=confident_joint), dtype=bool)
    return LabelIssues(num_issues=int(issues.sum()), issues=np.asarray(issues, dtype=bool),
                       noise_rate=float(1.0 - np.trace(joint)), transition=np.asarray(noise_matrix, float).T,
                       joint=np.asarray(joint, float).T, confident_joint=np.asarray(confident_joint).T,
                       suggested=suggested_labels(probs, given=labels))


def load_noise_rate_estimate(path, *, labels) -> tuple[float, str]:
    """``(estimated noise rate, where it came from)`` for training ``labels`` from ``path``.

    ``path`` is the ``.json`` summary ``noisyfer suspects`` writes (its ``estimated_noise_rate``; its
    ``given_labels_sha256`` must be that of ``labels``: an estimate made on other labels is refused) or
    an (N, C) ``.npy`` of out-of-sample probabilities (cleanlab's estimate is computed here).
    """
    import json

    from ..noise import labels_sha256

    path = Path(path)
    labels = np.asarray(labels, dtype=np.int64)
    if not path.is_file():
        raise UserError(f"method.noise_estimate: file not found: {path}")
    if path.suffix.lower() == ".npy":
        probs = np.load(path, allow_pickle=False)
        rate = estimate_label_issues(labels=labels, probs=probs, source=f"method.noise_estimate {path}").noise_rate
        return rate, f"cleanlab on {path}"
    if path.suffix.lower() != ".json":
        raise UserError(f"method.noise_estimate: expected the .json of noisyfer suspects or a .npy, got {path}")
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"method.noise_estimate: {path}: invalid JSON ({exc})") from None
    if not isinstance(summary, dict) or "estimated_noise_rate" not in summary:
        raise UserError(f"method.noise_estimate: {path} has no estimated_noise_rate (not written by noisyfer suspects)")
    if summary.get("given_labels_sha256") != labels_sha256(labels):
        raise UserError(f"method.noise_estimate: {path} was estimated on other training labels than this run's "
                        "(checksum differs): estimate on the same data and noise settings")
    rate = float(summary["estimated_noise_rate"])
    if not 0.0 <= rate < 1.0:
        raise UserError(f"method.noise_estimate: {path}: estimated_noise_rate {rate} is not a rate in [0, 1)")
    return rate, f"{path} ({summary.get('probabilities', 'noisyfer suspects')})"
