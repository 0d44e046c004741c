"""Invariants of the symmetric, uniform, asymmetric, crowd and none noise protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisyfer.data.classes import BASIC7, BASIC8
from noisyfer.errors import UserError
from noisyfer.noise import DEFAULT_ASYMMETRIC_PAIRS, NOISE_KINDS, apply_noise, transition_matrix

RAFDB_ORDER = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
N = 20000


def clean_labels(num_classes: int = 7, n: int = N, seed: int = 123) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_classes, size=n)


def within_binomial(observed: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


# --- transition matrix -------------------------------------------------------------------------


def test_transition_matrix_by_hand():
    original = np.array([0, 0, 1, 2])
    noisy = np.array([1, 0, 1, 0])
    expected = np.array(
        [
            [0.5, 0.5, 0.0, 0.0],  # two samples of class 0: one stays, one goes to 1
            [0.0, 1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0],  # the only class-2 sample became 0
            [0.0, 0.0, 0.0, 1.0],  # class 3 has no samples: identity row
        ]
    )
    np.testing.assert_array_equal(transition_matrix(original, noisy, 4), expected)


def test_small_symmetric_result_is_consistent_by_hand():
    labels = np.array([0, 1, 2, 0, 1, 2])
    result = apply_noise(labels, kind="symmetric", rate=0.5, seed=3, class_names=("a", "b", "c"), exact=True)
    # exact: round(0.5 * 2) = 1 flip per class, so 3 of 6 samples change.
    assert result.flipped.sum() == 3
    assert result.realized_rate == 0.5
    for c in range(3):
        assert result.flipped[labels == c].sum() == 1
        row = result.transition[c]
        assert row[c] == 0.5 and row.sum() == 1.0


@pytest.mark.parametrize("kind", ["none", "symmetric", "uniform", "asymmetric"])
def test_rate_zero_is_identity(kind):
    labels = clean_labels()
    result = apply_noise(labels, kind=kind, rate=0.0, seed=1, class_names=BASIC7)
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_array_equal(result.transition, np.eye(7))
    assert result.realized_rate == 0.0


@pytest.mark.parametrize("kind", ["symmetric", "uniform", "asymmetric"])
@pytest.mark.parametrize("exact", [False, True])
def test_transition_rows_sum_to_one(kind, exact):
    result = apply_noise(clean_labels(8), kind=kind, rate=0.4, seed=2, class_names=BASIC8, exact=exact)
    np.testing.assert_allclose(result.transition.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(result.transition, transition_matrix(result.original, result.labels, 8))


# --- realized rates ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_symmetric_rate(rate):
    result = apply_noise(clean_labels(), kind="symmetric", rate=rate, seed=0, class_names=BASIC7)
    assert within_binomial(result.realized_rate, rate, N)
    assert result.expected_rate == rate


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_uniform_rate_counts_kept_classes(rate):
    result = apply_noise(clean_labels(), kind="uniform", rate=rate, seed=0, class_names=BASIC7)
    effective = rate * (1 - 1 / 7)
    assert within_binomial(result.realized_rate, effective, N)
    assert result.expected_rate == pytest.approx(effective)
    # About 1/C of the relabelled samples drew their own class back.
    relabelled = result.params["num_relabelled"]
    assert within_binomial(relabelled / N, rate, N)
    assert within_binomial(result.flipped.sum() / relabelled, 1 - 1 / 7, relabelled)


def test_symmetric_flips_are_uniform_over_other_classes():
    labels = clean_labels()
    result = apply_noise(labels, kind="symmetric", rate=0.4, seed=5, class_names=BASIC7)
    flipped = result.flipped
    assert (result.labels[flipped] != labels[flipped]).all()
    counts = np.zeros((7, 7))
    np.add.at(counts, (labels[flipped], result.labels[flipped]), 1)
    assert np.diag(counts).sum() == 0
    chi2 = 0.0
    for c in range(7):
        others = np.delete(counts[c], c)
        expected = others.sum() / 6
        chi2 += ((others - expected) ** 2 / expected).sum()
    dof = 7 * 5
    assert chi2 < dof + 5 * math.sqrt(2 * dof)


def test_symmetric_never_keeps_class_even_when_selected_exactly():
    labels = clean_labels()
    result = apply_noise(labels, kind="symmetric", rate=0.5, seed=9, class_names=BASIC7, exact=True)
    assert result.flipped.sum() == sum(math.floor(0.5 * (labels == c).sum() + 0.5) for c in range(7))


# --- exact counts --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
def test_exact_flips_round_p_n_per_class(kind):
    labels = clean_labels(n=997)
    rate = 0.37
    result = apply_noise(labels, kind=kind, rate=rate, seed=4, class_names=BASIC7, exact=True)
    for c in range(7):
        n_c = int((labels == c).sum())
        assert result.flipped[labels == c].sum() == math.floor(rate * n_c + 0.5)
    assert result.realized_rate == result.expected_rate


def test_exact_uniform_relabels_round_p_n_per_class():
    labels = clean_labels(n=1001)
    result = apply_noise(labels, kind="uniform", rate=0.25, seed=4, class_names=BASIC7, exact=True)
    selected = result.params["selected_per_class"]
    for c, name in enumerate(BASIC7):
        n_c = int((labels == c).sum())
        assert selected[name] == math.floor(0.25 * n_c + 0.5)
        assert result.flipped[labels == c].sum() <= selected[name]
    assert result.params["num_relabelled"] == sum(selected.values())


def test_exact_rounds_halves_up():
    labels = np.array([0] * 5 + [1] * 3)
    result = apply_noise(labels, kind="symmetric", rate=0.5, seed=0, class_names=("a", "b"), exact=True)
    assert result.params["selected_per_class"] == {"a": 3, "b": 2}  # 2.5 -> 3, 1.5 -> 2
    assert result.flipped.sum() == 5


# --- asymmetric ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [BASIC7, RAFDB_ORDER], ids=["simulator", "rafdb"])
def test_asymmetric_follows_named_pairs_in_any_class_order(order):
    labels = clean_labels()
    rate = 0.3
    result = apply_noise(labels, kind="asymmetric", rate=rate, seed=0, class_names=order)
    flipped = result.flipped
    for src, dst in zip(labels[flipped], result.labels[flipped]):
        assert DEFAULT_ASYMMETRIC_PAIRS[order[src]] == order[dst]
    for c, name in enumerate(order):
        pair = order.index(DEFAULT_ASYMMETRIC_PAIRS[name])
        row = result.transition[c]
        n_c = int((labels == c).sum())
        assert within_binomial(row[pair], rate, n_c)
        assert row[c] + row[pair] == pytest.approx(1.0)


def test_asymmetric_same_pairs_across_orders_with_aliases():
    rafdb_names = ("Surprise", "Fear", "Disgust", "Happy", "Sad", "Angry", "Neutral")
    result = apply_noise(clean_labels(), kind="asymmetric", rate=0.2, seed=0, class_names=rafdb_names)
    assert result.params["pairs"]["Happy"] == "Neutral"
    assert result.params["pairs"]["Angry"] == "Happy"
    assert result.params["unpaired_classes"] == []


def test_asymmetric_leaves_contempt_unchanged_and_says_so():
    labels = clean_labels(8)
    result = apply_noise(labels, kind="asymmetric", rate=0.5, seed=1, class_names=BASIC8)
    contempt = labels == BASIC8.index("contempt")
    assert not result.flipped[contempt].any()
    assert result.params["unpaired_classes"] == ["contempt"]
    assert result.params["unpaired_samples"] == int(contempt.sum())
    assert result.expected_rate == pytest.approx(0.5 * (1 - contempt.mean()))


def test_default_pairs_on_dataset_without_target_class_are_reported():
    names = ("happiness", "sadness", "surprise", "fear", "disgust", "anger")  # no neutral
    result = apply_noise(clean_labels(6), kind="asymmetric", rate=0.3, seed=0, class_names=names)
    assert set(result.params["unpaired_classes"]) == {"happiness", "sadness"}
    assert any("neutral" in note for note in result.params["default_pairs_unused"])
    assert not result.flipped[np.isin(result.original, [0, 1])].any()


@pytest.mark.parametrize(
    "pairs",
    [{"fear": "happiness"}, {"Fearful": "Happy"}, {4: 1}, {"4": "1"}],
    ids=["names", "aliases", "indices", "index-strings"],
)
def test_custom_pairs(pairs):
    labels = clean_labels()
    result = apply_noise(labels, kind="asymmetric", rate=0.4, seed=0, class_names=BASIC7, pairs=pairs)
    assert result.params["pairs"] == {"fear": "happiness"}
    assert set(result.labels[result.flipped]) == {1}
    assert set(result.original[result.flipped]) == {4}


@pytest.mark.parametrize(
    "pairs, message",
    [
        ({"fear": "joy"}, "no class 'joy'"),
        ({"contempt": "anger"}, "no class 'contempt'"),
        ({"fear": "fear"}, "paired with itself"),
        ({2: 2}, "paired with itself"),
        ({9: 1}, "index 9"),
        ({"happy": "fear", "happiness": "anger"}, "given twice"),
        ({}, "empty"),
        (["fear", "anger"], "map"),
    ],
)
def test_invalid_pairs_raise_user_error(pairs, message):
    with pytest.raises(UserError, match="noise.pairs") as info:
        apply_noise(clean_labels(n=50), kind="asymmetric", rate=0.2, seed=0, class_names=BASIC7, pairs=pairs)
    assert message in str(info.value)


# --- crowd, none ---------------------------------------------------------------------------------


def test_crowd_labels_replace_labels():
    labels = clean_labels(n=500)
    crowd = labels.copy()
    crowd[::7] = (crowd[::7] + 2) % 7
    result = apply_noise(labels, kind="crowd", rate=0.0, seed=0, class_names=BASIC7, crowd_labels=crowd)
    np.testing.assert_array_equal(result.labels, crowd)
    assert result.realized_rate == pytest.approx(len(labels[::7]) / 500)
    assert result.expected_rate == result.realized_rate


def test_none_keeps_labels():
    labels = clean_labels(n=100)
    result = apply_noise(labels, kind="none", rate=0, seed=0, class_names=BASIC7)
    np.testing.assert_array_equal(result.labels, labels)


# --- determinism ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symmetric", "uniform", "asymmetric"])
@pytest.mark.parametrize("exact", [False, True])
def test_same_seed_same_labels_other_seed_other_labels(kind, exact):
    labels = clean_labels(n=2000)
    a = apply_noise(labels, kind=kind, rate=0.3, seed=11, class_names=BASIC7, exact=exact)
    b = apply_noise(labels, kind=kind, rate=0.3, seed=11, class_names=BASIC7, exact=exact)
    c = apply_noise(labels, kind=kind, rate=0.3, seed=12, class_names=BASIC7, exact=exact)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert (a.labels != c.labels).any()


def test_input_labels_are_not_modified():
    labels = clean_labels(n=300)
    before = labels.copy()
    apply_noise(labels, kind="symmetric", rate=0.5, seed=0, class_names=BASIC7)
    np.testing.assert_array_equal(labels, before)


# --- argument checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), "0.3", True, None])
def test_rate_outside_unit_interval_names_field(rate):
    with pytest.raises(UserError, match=r"noise\.rate"):
        apply_noise([0, 1], kind="symmetric", rate=rate, seed=0, class_names=("a", "b"))


def test_unknown_kind_lists_kinds():
    with pytest.raises(UserError) as info:
        apply_noise([0, 1], kind="symetric", rate=0.1, seed=0, class_names=("a", "b"))
    message = str(info.value)
    assert "noise.kind" in message and "did you mean 'symmetric'" in message
    assert all(kind in message for kind in NOISE_KINDS)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "symmetric", "seed": -1}, "noise.seed"),
        ({"kind": "symmetric", "seed": 1.5}, "noise.seed"),
        ({"kind": "none", "rate": 0.2}, "noise.rate"),
        ({"kind": "crowd", "rate": 0.2, "crowd_labels": [0, 1]}, "noise.rate"),
        ({"kind": "crowd", "exact": True, "crowd_labels": [0, 1]}, "noise.exact"),
        ({"kind": "symmetric", "exact": "yes"}, "noise.exact"),
        ({"kind": "symmetric", "pairs": {"a": "b"}}, "noise.pairs"),
        ({"kind": "uniform", "probs": np.eye(2)}, "noise.probs"),
        ({"kind": "crowd"}, "crowd"),
    ],
)
def test_misplaced_or_invalid_options_raise(kwargs, field):
    arguments = {"rate": 0.0 if kwargs["kind"] in ("none", "crowd") else 0.1, "seed": 0} | kwargs
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        apply_noise([0, 1], class_names=("a", "b"), **arguments)


@pytest.mark.parametrize("labels", [[0, 2], [-1, 0], [[0, 1]], [0.0, 1.0]])
def test_invalid_labels_raise(labels):
    with pytest.raises(UserError, match="labels"):
        apply_noise(labels, kind="symmetric", rate=0.1, seed=0, class_names=("a", "b"))
