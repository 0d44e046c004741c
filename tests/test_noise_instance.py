"""Invariants of instance-dependent noise: who flips (ambiguity) and to what (the probability rows)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisyfer.data.classes import BASIC7
from noisyfer.errors import UserError
from noisyfer.noise import INSTANCE_WEIGHT_FLOOR, ambiguity_weights, apply_noise, flip_probabilities

N = 20000
C = 7


def labels_and_probs(confidence: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, and rows with ``confidence`` on the label and the rest on one other class ``k``."""
    rng = np.random.default_rng(seed)
    n = confidence.size
    labels = rng.integers(0, C, size=n)
    other = (labels + rng.integers(1, C, size=n)) % C
    probs = np.zeros((n, C))
    probs[np.arange(n), labels] = confidence
    probs[np.arange(n), other] = 1.0 - confidence
    return labels, probs, other


# --- flip probabilities --------------------------------------------------------------------------


def test_flip_probabilities_water_filling_by_hand():
    # s = 2/10 would give 1.4 to the last sample; it is capped at 1 and the others share 1 flip.
    q = flip_probabilities(np.array([1.0, 1.0, 1.0, 7.0]), 0.5)
    np.testing.assert_allclose(q, [1 / 3, 1 / 3, 1 / 3, 1.0])


def test_flip_probabilities_without_capping_are_proportional():
    w = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(flip_probabilities(w, 0.2), 0.2 * w / w.mean())


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.8, 0.99])
def test_flip_probabilities_keep_the_mean_rate(rate):
    w = np.random.default_rng(1).gamma(0.3, size=5000) + 0.01
    q = flip_probabilities(w, rate)
    assert q.mean() == pytest.approx(rate, abs=1e-12)
    assert q.min() >= 0 and q.max() <= 1
    order = np.argsort(w)
    assert (np.diff(q[order]) >= -1e-15).all()  # never less likely to flip with more ambiguity


def test_ambiguity_weights_by_hand():
    labels = np.array([0, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.0, 0.5]])
    np.testing.assert_allclose(ambiguity_weights(labels, probs), INSTANCE_WEIGHT_FLOOR + np.array([0.3, 1.0]))


# --- who flips -----------------------------------------------------------------------------------


def test_realized_rate_close_to_rate():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, C, size=N)
    probs = rng.dirichlet(np.full(C, 0.3), size=N)
    rate = 0.3
    result = apply_noise(labels, kind="instance", rate=rate, seed=0, class_names=BASIC7, probs=probs)
    assert abs(result.realized_rate - rate) <= 4 * math.sqrt(rate * (1 - rate) / N)
    assert result.expected_rate == rate
    np.testing.assert_allclose(result.transition.sum(axis=1), 1.0)


def test_ambiguous_samples_flip_more_as_the_formula_says():
    confidence = np.where(np.arange(N) % 2 == 0, 0.95, 0.4)
    labels, probs, _ = labels_and_probs(confidence)
    rate = 0.2
    result = apply_noise(labels, kind="instance", rate=rate, seed=0, class_names=BASIC7, probs=probs)
    w = INSTANCE_WEIGHT_FLOOR + (1 - confidence)
    q = rate * w / w.mean()  # no sample reaches 1 here, so no capping
    for group in (confidence == 0.95, confidence == 0.4):
        expected = q[group][0]
        observed = result.flipped[group].mean()
        assert abs(observed - expected) <= 4 * math.sqrt(expected * (1 - expected) / group.sum())
    assert result.flipped[confidence == 0.4].mean() > 3 * result.flipped[confidence == 0.95].mean()


def test_exact_flips_round_p_n_and_prefers_ambiguous():
    confidence = np.where(np.arange(5001) % 2 == 0, 0.95, 0.4)
    labels, probs, _ = labels_and_probs(confidence, seed=3)
    result = apply_noise(labels, kind="instance", rate=0.2, seed=1, class_names=BASIC7, probs=probs, exact=True)
    assert result.flipped.sum() == math.floor(0.2 * 5001 + 0.5)
    assert result.realized_rate == result.expected_rate
    assert result.flipped[confidence == 0.4].mean() > 2 * result.flipped[confidence == 0.95].mean()


# --- to what -------------------------------------------------------------------------------------


def test_new_label_is_the_only_confusable_class():
    labels, probs, other = labels_and_probs(np.full(N, 0.6))
    result = apply_noise(labels, kind="instance", rate=0.4, seed=0, class_names=BASIC7, probs=probs)
    assert result.flipped.sum() > 0
    np.testing.assert_array_equal(result.labels[result.flipped], other[result.flipped])


def test_new_labels_follow_the_row_proportions():
    labels = np.zeros(N, dtype=np.int64)
    probs = np.zeros((N, C))
    probs[:, 0], probs[:, 2], probs[:, 5] = 0.2, 0.6, 0.2  # off-class mass 3:1 on classes 2 and 5
    result = apply_noise(labels, kind="instance", rate=0.5, seed=0, class_names=BASIC7, probs=probs)
    targets = result.labels[result.flipped]
    assert set(np.unique(targets)) == {2, 5}
    share = (targets == 2).mean()
    assert abs(share - 0.75) <= 4 * math.sqrt(0.75 * 0.25 / targets.size)


def test_one_hot_rows_fall_back_to_class_prior_then_uniform():
    n = 6000
    labels = np.repeat([0, 1], n // 2)
    probs = np.zeros((n, C))
    probs[np.arange(n), labels] = 1.0
    # Half of class 0 puts off-class mass on class 4; the other half (and all of class 1) is one-hot.
    ambiguous = (labels == 0) & (np.arange(n) % 2 == 0)
    probs[ambiguous, 0], probs[ambiguous, 4] = 0.5, 0.5
    result = apply_noise(labels, kind="instance", rate=0.3, seed=0, class_names=BASIC7, probs=probs)
    one_hot_class0 = (labels == 0) & ~ambiguous
    assert result.flipped[one_hot_class0].any()
    assert set(result.labels[result.flipped & (labels == 0)]) == {4}
    class1_targets = result.labels[result.flipped & (labels == 1)]
    assert 1 not in class1_targets and set(class1_targets) == {0, 2, 3, 4, 5, 6}
    assert result.params["samples_without_off_class_mass"] == int((~ambiguous).sum())


def test_instance_is_deterministic_and_rate_zero_is_identity():
    labels, probs, _ = labels_and_probs(np.full(3000, 0.7))
    kwargs = dict(kind="instance", class_names=BASIC7, probs=probs)
    a = apply_noise(labels, rate=0.3, seed=4, **kwargs)
    b = apply_noise(labels, rate=0.3, seed=4, **kwargs)
    c = apply_noise(labels, rate=0.3, seed=5, **kwargs)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert (a.labels != c.labels).any()
    zero = apply_noise(labels, rate=0.0, seed=4, **kwargs)
    np.testing.assert_array_equal(zero.transition, np.eye(C))


# --- input checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "probs, message",
    [
        (np.full((3, 2), 0.5), "shape"),
        (np.array([[0.5, 0.5], [2.0, -1.0], [1.0, 0.0], [0.0, 1.0]]), "logits"),
        (np.array([[0.5, 0.5], [3.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), "sums to 4"),
        (np.array([[1, 0], [0, 1], [1, 0], [0, 1]]), "floating"),
        (np.array([[0.5, 0.5], [np.nan, 0.5], [1.0, 0.0], [0.0, 1.0]]), "non-finite"),
    ],
)
def test_bad_probs_raise(probs, message):
    with pytest.raises(UserError, match="noise.probs") as info:
        apply_noise([0, 1, 0, 1], kind="instance", rate=0.2, seed=0, class_names=("a", "b"), probs=probs)
    assert message in str(info.value)


def test_instance_without_probs_raises():
    with pytest.raises(UserError, match="noise.probs"):
        apply_noise([0, 1], kind="instance", rate=0.2, seed=0, class_names=("a", "b"))
