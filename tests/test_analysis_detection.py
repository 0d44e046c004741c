"""Noise detection: precision / recall / F1 of flagged sets and AUROC of scores, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from noisyfer.analysis.detection import auroc, bottom_k, detection_scores, noise_detection
from noisyfer.errors import UserError


def test_detection_scores_by_hand():
    flagged = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    noisy = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    out = detection_scores(flagged, noisy)
    # TP = samples 0, 1; flagged 4; noisy 3 -> P = 2/4, R = 2/3, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    assert (out["true_positives"], out["flagged"], out["noisy"]) == (2, 4, 3)
    assert out["precision"] == 0.5 and out["recall"] == pytest.approx(2 / 3) and out["f1"] == pytest.approx(4 / 7)


def test_detection_scores_empty_sets_are_nan_not_zero():
    out = detection_scores(np.zeros(4, bool), np.array([1, 0, 0, 0], bool))
    assert np.isnan(out["precision"]) and out["recall"] == 0.0 and np.isnan(out["f1"])
    out = detection_scores(np.array([1, 0, 0, 0], bool), np.zeros(4, bool))
    assert out["precision"] == 0.0 and np.isnan(out["recall"])


def test_auroc_by_hand_with_ties():
    # positives score 0.9, 0.5; negatives 0.5, 0.1, 0.2. Pairs (pos > neg): 0.9 beats all 3; 0.5 ties
    # one (1/2) and beats two -> (3 + 2.5) / (2 * 3) = 11/12
    scores = np.array([0.9, 0.5, 0.5, 0.1, 0.2])
    positives = np.array([1, 1, 0, 0, 0], dtype=bool)
    assert auroc(scores, positives) == pytest.approx(11 / 12)
    assert auroc(-scores, positives) == pytest.approx(1 / 12)  # reversed ranking
    assert auroc(np.ones(5), positives) == 0.5  # all tied
    assert np.isnan(auroc(scores, np.zeros(5, bool)))


def test_auroc_agrees_with_pairwise_definition_on_random_data():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 300).astype(float)  # many ties
    positives = rng.random(300) < 0.3
    pos, neg = scores[positives], scores[~positives]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    expected = wins / (pos.size * neg.size)
    assert auroc(scores, positives) == pytest.approx(expected)


def test_bottom_k_breaks_ties_by_index():
    # the two 0.1 (indices 1, 3), then the first 0.3 (index 0, not 2)
    assert bottom_k(np.array([0.3, 0.1, 0.3, 0.1, 0.9]), 3).tolist() == [True, True, False, True, False]
    with pytest.raises(UserError):
        bottom_k(np.zeros(3), 4)


def test_noise_detection_from_scores_and_relabels():
    true = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    given = np.array([0, 2, 2, 1, 1, 2, 0, 0])  # samples 1, 3, 7 mislabeled
    score = np.array([0.9, 0.2, 0.8, 0.3, 0.7, np.nan, 0.6, 0.5])
    # relabels: 1 (2->1, right), 3 (1->2, wrong), 6 (0->1, corrupts), 7 (0->1, right)
    labels = np.array([0, 1, 2, 2, 1, 2, 1, 1])
    out = noise_detection(given=given, true=true, clean_score=score, labels=labels, threshold=0.55)
    assert out.num_noisy == 3 and out.num_scored == 7
    # scored: noisy 0.2, 0.3, 0.5; clean 0.9, 0.8, 0.7, 0.6 -> perfectly separated
    assert out.auroc == 1.0
    # k = 3 lowest, the unscored sample 5 counting as lowest: {5, 1, 3} -> 2 of 3 noisy
    assert out.at_noise_count["precision"] == pytest.approx(2 / 3)
    # score < 0.55 among scored: {1, 3, 7} -> all noisy, all found
    assert out.at_threshold["precision"] == 1.0 and out.at_threshold["recall"] == 1.0
    assert out.relabel["flagged"] == 4 and out.relabel["precision"] == pytest.approx(3 / 4)
    assert out.relabel_accuracy["corrected"] == 2 and out.relabel_accuracy["corrupted"] == 1
    assert out.relabel_accuracy["relabel_precision"] == 0.5  # samples 1 and 7 of the 4 relabeled end right
    assert "no score" in out.notes[0]


def test_noise_detection_of_a_method_without_scores_has_none():
    out = noise_detection(given=np.array([0, 1]), true=np.array([0, 0]))
    assert out.auroc is None and out.relabel is None
    values = dict(out.rows())
    assert values["AUROC of the score (mislabeled vs clean)"] is None  # shown as n/a, not 0
    with pytest.raises(UserError, match="clean_score has 3 values"):
        noise_detection(given=np.array([0, 1]), true=np.array([0, 0]), clean_score=np.zeros(3))
