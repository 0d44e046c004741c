"""Noise detection: how well a method's flags and per-sample scores find the mislabeled samples.

Methods expose what they believe about each training sample through ``epoch_record`` (see
:meth:`noisyfer.methods.base.Method.epoch_record`): ``clean_score`` (higher = more likely correctly
labelled: SCN's attention weight, DMUE's certainty, RUL's relative certainty, LRN's 1/(1+noise std),
NCCTFER's margin over its class threshold, ELR's and SMEC's target agreement, LDLVA's 1 - lambda) and ``labels`` (the current labels of a relabeling
method). Against the known flips (the simulator's ``true_label``, or the pre-noise labels of injected
noise) this module measures

* the *ranking*: AUROC of ``-clean_score`` (the ``method`` suspicion of
  :mod:`noisyfer.analysis.scores`) as a detector of mislabeled samples, i.e. the probability that a
  random correctly labelled sample scores higher than a random mislabeled one (ties count 1/2);
* a *flagged set*: precision, recall and F1. For a score, the flagged set is the ``k`` lowest-scoring
  samples with ``k`` = the number of mislabeled samples (so precision = recall = F1, the
  "R-precision"), or the samples scoring below a given threshold. For a relabeling method it is the
  set of samples whose current label differs from the given one;
* for relabeling methods, the relabel accuracy (relabeled to the true class or not), from
  :func:`noisyfer.analysis.relabel.relabel_accuracy`.

A quantity a method does not provide is ``None`` (shown as "n/a"), never 0.

Examples
--------
>>> noisy = np.array([True, False, True, False])
>>> auroc(-np.array([0.1, 0.9, 0.4, 0.3]), noisy)   # noisy samples 0.1, 0.4; clean 0.9, 0.3
0.75
>>> detection_scores(np.array([True, True, False, False]), noisy)["precision"]
0.5
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UserError
from .relabel import relabel_accuracy
from .scores import method_suspicion

__all__ = ["NoiseDetection", "auroc", "bottom_k", "detection_scores", "noise_detection"]


def _bool_vector(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise UserError(f"{name} must be a 1-D array, got shape {array.shape}")
    return array.astype(bool)


def detection_scores(flagged, noisy) -> dict:
    """Precision, recall and F1 of the ``flagged`` set as a detector of the ``noisy`` samples.

    Returns
    -------
    dict
        ``flagged``, ``noisy``, ``true_positives`` (counts), ``precision`` (NaN when nothing is
        flagged), ``recall`` (NaN when nothing is noisy) and ``f1`` (NaN when either is NaN).
    """
    flagged, noisy = _bool_vector(flagged, "flagged"), _bool_vector(noisy, "noisy")
    if flagged.shape != noisy.shape:
        raise UserError(f"flagged and noisy differ in length: {flagged.shape[0]} vs {noisy.shape[0]}")
    tp, n_flag, n_noisy = int((flagged & noisy).sum()), int(flagged.sum()), int(noisy.sum())
    precision = tp / n_flag if n_flag else float("nan")
    recall = tp / n_noisy if n_noisy else float("nan")
    if np.isnan(precision) or np.isnan(recall):
        f1 = float("nan")
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"flagged": n_flag, "noisy": n_noisy, "true_positives": tp, "precision": precision,
            "recall": recall, "f1": f1}


def auroc(scores, positives) -> float:
    """Area under the ROC curve of ``scores`` (higher = more likely positive) for ``positives``.

    Computed exactly from average ranks (the Mann-Whitney statistic), so tied scores count 1/2.
    NaN when either class is empty. ``scores`` must be finite.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = _bool_vector(positives, "positives")
    if scores.shape != positives.shape:
        raise UserError(f"scores and positives differ in shape: {scores.shape} vs {positives.shape}")
    if not np.isfinite(scores).all():
        raise UserError("auroc: scores must be finite (drop samples without a score first)")
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # 1-based rank shared by a group of ties
    ranks = average_rank[inverse]
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def bottom_k(scores, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` lowest ``scores`` (ties broken by index, lower first)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not 0 <= k <= scores.size:
        raise UserError(f"k must be in 0..{scores.size}, got {k}")
    mask = np.zeros(scores.size, dtype=bool)
    mask[np.argsort(scores, kind="stable")[:k]] = True
    return mask


@dataclass
class NoiseDetection:
    """Noise-detection summary of one run (see the module docstring).

    Attributes
    ----------
    num_samples, num_noisy
        Training samples and how many of them carry a wrong given label.
    reference
        What the truth is (e.g. "true_label column of the training set").
    score_key
        The per-sample score used (``clean_score``), or ``None`` when the method records none.
    num_scored
        Samples with a finite score (a method may never have seen some, e.g. ``drop_last``).
    auroc
        AUROC of ``-score`` for the mislabeled samples among the scored ones.
    at_noise_count
        :func:`detection_scores` of the ``num_noisy`` lowest-scoring samples.
    at_threshold
        :func:`detection_scores` of the samples scoring below ``threshold``, when one was given.
    relabel
        :func:`detection_scores` of the relabeled set, for a method recording ``labels``.
    relabel_accuracy
        :func:`~noisyfer.analysis.relabel.relabel_accuracy` given -> current labels vs the truth.
    """

    num_samples: int
    num_noisy: int
    reference: str | None = None
    score_key: str | None = None
    num_scored: int | None = None
    auroc: float | None = None
    at_noise_count: dict | None = None
    threshold: float | None = None
    at_threshold: dict | None = None
    relabel: dict | None = None
    relabel_accuracy: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def rows(self) -> list[tuple[str, object]]:
        """``(quantity, value)`` rows for a table; absent quantities are ``None`` ("n/a")."""
        def get(d, key):
            return None if d is None else d.get(key)

        rows = [
            ("mislabeled training samples", f"{self.num_noisy} of {self.num_samples}"),
            ("per-sample score", self.score_key),
            ("samples with a score", self.num_scored),
            ("AUROC of the score (mislabeled vs clean)", self.auroc),
            ("precision = recall of the lowest-scored (k = #mislabeled)", get(self.at_noise_count, "precision")),
        ]
        if self.threshold is not None:
            rows += [(f"precision of score < {self.threshold:g}", get(self.at_threshold, "precision")),
                     (f"recall of score < {self.threshold:g}", get(self.at_threshold, "recall")),
                     (f"F1 of score < {self.threshold:g}", get(self.at_threshold, "f1"))]
        return rows + [
            ("relabeled samples", get(self.relabel, "flagged")),
            ("relabel flag precision (relabeled samples that were mislabeled)", get(self.relabel, "precision")),
            ("relabel flag recall", get(self.relabel, "recall")),
            ("relabel flag F1", get(self.relabel, "f1")),
            ("relabel accuracy (relabeled to the true class)", get(self.relabel_accuracy, "relabel_precision")),
            ("mislabeled samples corrected", get(self.relabel_accuracy, "corrected")),
            ("correct labels corrupted", get(self.relabel_accuracy, "corrupted")),
        ]


def noise_detection(*, given, true, clean_score=None, labels=None, threshold: float | None = None,
                    reference: str | None = None) -> NoiseDetection:
    """Noise-detection summary from plain arrays.

    Parameters
    ----------
    given, true
        (N,) labels the run was given and the true labels.
    clean_score
        (N,) the method's per-sample score (higher = cleaner); NaN for samples without one.
    labels
        (N,) current labels of a relabeling method.
    threshold
        Also report the flagged set ``clean_score < threshold``.
    """
    given, true = np.asarray(given, dtype=np.int64), np.asarray(true, dtype=np.int64)
    if given.ndim != 1 or given.shape != true.shape:
        raise UserError(f"given and true labels must be (N,) arrays of one length, got {given.shape}, {true.shape}")
    noisy = given != true
    out = NoiseDetection(num_samples=int(given.size), num_noisy=int(noisy.sum()), reference=reference)
    if clean_score is not None:
        score = np.asarray(clean_score, dtype=np.float64).reshape(-1)
        if score.shape != given.shape:
            raise UserError(f"clean_score has {score.size} values, expected {given.size}")
        finite = np.isfinite(score)
        out.score_key = "clean_score"
        out.num_scored = int(finite.sum())
        if finite.sum() < score.size:
            out.notes.append(f"{score.size - int(finite.sum())} samples have no score and are left out of the AUROC")
        out.auroc = auroc(method_suspicion(score[finite]), noisy[finite])
        # unscored samples rank as the most suspicious: the method cannot vouch for them
        ranked = np.where(finite, score, -np.inf)
        out.at_noise_count = detection_scores(bottom_k(ranked, out.num_noisy), noisy)
        if threshold is not None:
            out.threshold = float(threshold)
            out.at_threshold = detection_scores(finite & (score < threshold), noisy)
    if labels is not None:
        current = np.asarray(labels, dtype=np.int64).reshape(-1)
        if current.shape != given.shape:
            raise UserError(f"labels has {current.size} values, expected {given.size}")
        out.relabel = detection_scores(current != given, noisy)
        out.relabel_accuracy = relabel_accuracy(given, current, true)
    return out
