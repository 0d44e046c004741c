"""Class orders: named orders, explicit lists, label-code lookups and each reader's code table."""

from __future__ import annotations

import numpy as np
import pytest

from noisyfer.data import fixtures
from noisyfer.data.readers import affectnet, fer2013, ferplus, rafdb
from noisyfer.data.readers.orders import code_lookup, describe_mapping, resolve_class_order
from noisyfer.errors import UserError

RAF = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")


def test_named_orders_keep_the_dataset_classes():
    assert resolve_class_order("native", RAF) == list(RAF)
    assert resolve_class_order("affectnet", RAF) == ["neutral", "happiness", "sadness", "surprise", "fear",
                                                     "disgust", "anger"]
    assert resolve_class_order("fer2013", RAF) == ["anger", "disgust", "fear", "happiness", "sadness", "surprise",
                                                   "neutral"]
    eight = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    # RAF-DB's order has no contempt: it is appended
    assert resolve_class_order("rafdb", eight) == list(RAF) + ["contempt"]


def test_explicit_lists_accept_aliases_and_must_be_permutations():
    assert resolve_class_order(["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"], RAF) == \
        ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    with pytest.raises(UserError, match="missing \\['neutral'\\]"):
        resolve_class_order(list(RAF[:6]), RAF)
    with pytest.raises(UserError, match="names a class twice"):
        resolve_class_order(list(RAF) + ["fear"], RAF)
    with pytest.raises(UserError, match="not in the dataset \\['contempt'\\]"):
        resolve_class_order(list(RAF) + ["contempt"], RAF)
    with pytest.raises(UserError, match=r"data.class_order: \['bored'\] must list exactly the dataset's classes .*"
                                        r"not in the dataset \['bored'\]"):
        resolve_class_order(["bored"], RAF)  # any name may be a class, but not one the dataset lacks


def test_code_lookup_excludes_non_classes_and_missing_classes():
    lut = code_lookup(affectnet.AFFECTNET_CODES, RAF)
    assert lut.tolist() == [6, 3, 4, 0, 1, 2, 5, -1, -1, -1, -1]  # contempt and 8..10 excluded
    assert describe_mapping(affectnet.AFFECTNET_CODES, RAF)["3"] == "surprise -> 0"
    assert describe_mapping(affectnet.AFFECTNET_CODES, RAF)["10"] == "no-face -> excluded"


@pytest.mark.parametrize("reader_codes, fixture_codes", [
    (rafdb.RAFDB_CODES, fixtures.RAFDB_CODES),
    (fer2013.FER2013_CODES, fixtures.FER2013_CODES),
    ({k: v for k, v in affectnet.AFFECTNET_CODES.items() if k < 8}, fixtures.AFFECTNET_CODES),
    (dict(enumerate(ferplus.VOTE_COLUMNS)), {n: i for i, n in enumerate(fixtures.FERPLUS_COLUMNS)}),
])
def test_reader_code_tables_agree_with_the_independently_written_fixture_tables(reader_codes, fixture_codes):
    assert {v: k for k, v in reader_codes.items()} == fixture_codes


def test_native_orders_are_the_code_orders():
    assert rafdb.RafdbOptions().class_order == [rafdb.RAFDB_CODES[c] for c in range(1, 8)] == list(RAF)
    assert fer2013.Fer2013Options().class_order == [fer2013.FER2013_CODES[c] for c in range(7)]
    assert affectnet.AffectnetOptions().class_order == [affectnet.AFFECTNET_CODES[c] for c in range(8)]
    assert ferplus.FerplusOptions(classes=7).class_order == list(ferplus.VOTE_COLUMNS[:7])
    assert np.array_equal(code_lookup(rafdb.RAFDB_CODES, rafdb.RafdbOptions().class_order)[1:], np.arange(7))
