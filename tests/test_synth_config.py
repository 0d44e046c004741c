"""SynthConfig validation, class priors and exact per-class counts."""

from __future__ import annotations

import numpy as np
import pytest

from noisyfer.data.classes import BASIC7, BASIC8
from noisyfer.data.synthetic import RAFDB_TRAIN_COUNTS, SynthConfig, class_prior, exact_class_counts
from noisyfer.errors import UserError


@pytest.mark.parametrize(
    "kwargs, field, allowed",
    [
        ({"image_size": 31}, "image_size", "32..224"),
        ({"image_size": 225}, "image_size", "32..224"),
        ({"image_size": 64.0}, "image_size", "32..224"),
        ({"num_classes": 6}, "num_classes", "7 or 8"),
        ({"num_train": 0}, "num_train", "1.."),
        ({"num_test": -1}, "num_test", "0.."),
        ({"seed": -3}, "seed", "0.."),
        ({"ambiguity": 1.5}, "ambiguity", "0.0..1.0"),
        ({"ambiguity": float("nan")}, "ambiguity", "0.0..1.0"),
        ({"annotators": 0}, "annotators", "1..100"),
        ({"annotators": 10, "annotator_pool": 5}, "annotator_pool", "10.."),
        ({"p_mask": -0.1}, "p_mask", "0.0..1.0"),
        ({"yaw_max_deg": 60}, "yaw_max_deg", "0.0..45.0"),
        ({"class_counts": "fer2013"}, "class_counts", "'rafdb', 'balanced'"),
        ({"class_counts": (1, 2, 3)}, "class_counts", "expected 7"),
        ({"class_counts": (1, 1, 1, 1, 1, 1, -1)}, "class_counts", ">= 0"),
        ({"class_counts": (0,) * 7}, "class_counts", "not all 0"),
        ({"intensity_min": 0.8, "intensity_max": 0.2}, "intensity_min", "must not exceed"),
        ({"pseudo_va_noise": 1.5}, "pseudo_va_noise", "number in 0..1"),
        ({"pseudo_va_noise": (0.1, 0.2, 0.3)}, "pseudo_va_noise", "2 values (valence, arousal)"),
        ({"pseudo_va_noise": (0.1, "x")}, "pseudo_va_noise", "number in 0..1"),
    ],
)
def test_invalid_fields_raise_user_error_naming_the_field(kwargs, field, allowed):
    with pytest.raises(UserError) as err:
        SynthConfig(**kwargs)
    assert field in str(err.value)
    assert allowed in str(err.value)


def test_from_dict_rejects_unknown_keys_and_round_trips():
    cfg = SynthConfig(num_train=50, class_counts=(1, 2, 3, 4, 5, 6, 7), num_classes=7)
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserError, match="imagesize"):
        SynthConfig.from_dict({"imagesize": 64})


def test_stable_hash_depends_on_every_field_and_only_on_them():
    a = SynthConfig(num_train=100)
    assert a.stable_hash() == SynthConfig(num_train=100).stable_hash()
    assert a.stable_hash() != SynthConfig(num_train=101).stable_hash()
    assert a.stable_hash() != SynthConfig(num_train=100, p_mask=0.05).stable_hash()
    # a list and a tuple of the same weights are the same config
    w = [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert SynthConfig(class_counts=w).stable_hash() == SynthConfig(class_counts=tuple(w)).stable_hash()
    assert len(a.stable_hash()) == 16


def test_rafdb_prior_rounds_back_to_rafdb_counts():
    prior = class_prior("rafdb", 7)
    total = sum(RAFDB_TRAIN_COUNTS.values())
    assert total == 12271
    counts = exact_class_counts(prior, total)
    assert counts.tolist() == [RAFDB_TRAIN_COUNTS[n] for n in BASIC7]
    prior8 = class_prior("rafdb", 8)
    assert prior8.shape == (8,) and 0 < prior8[BASIC8.index("contempt")] < 0.02


def test_exact_counts_largest_remainder_by_hand():
    # 10 faces, 7 equal classes: 1 each, 3 left over go to the first 3 (equal remainders, stable)
    assert exact_class_counts(class_prior("balanced", 7), 10).tolist() == [2, 2, 2, 1, 1, 1, 1]
    # weights 1:2:...: 7 over 28 -> 0.25, 0.5, ..., 1.75 -> floors 0,0,0,1,1,1,1 = 4, remainders
    # .25 .5 .75 0 .25 .5 .75 -> the 3 largest (.75, .75, .5 at index 1) get one more
    counts = exact_class_counts(class_prior((1, 2, 3, 4, 5, 6, 7), 7), 7)
    assert counts.tolist() == [0, 1, 1, 1, 1, 1, 2]
    assert exact_class_counts(np.array([0.5, 0.5]), 0).tolist() == [0, 0]
