"""FER2013 and FERPlus readers: usages -> splits, class codes, pixel strings, FERPlus vote rules."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from noisyfer.config import DataConfig, build_options
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import FER2013_CODES, write_fer2013, write_ferplus
from noisyfer.data.readers.ferplus import vote_labels
from noisyfer.errors import DataError
from noisyfer.registry import DATASETS


def read(name, root, cache, *, image_size=None, on_bad="error", **options):
    config = DataConfig(name=name, root=str(root), cache_dir=str(cache), image_size=image_size, on_bad=on_bad)
    return create_dataset(config, build_options(DATASETS.get(name).options, {"workers": 1, **options},
                                                section="data"))


@pytest.fixture(scope="module")
def fer(tmp_path_factory):
    return write_fer2013(tmp_path_factory.mktemp("fer"), num_train=14, num_public=7, num_private=8)


def test_fer2013_usages_counts_labels_and_pixels(fer, tmp_path):
    splits = read("fer2013", fer.root, tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 14, "val": 7, "test": 8}
    for split, data in splits.items():
        assert data.class_names == ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
        assert [data.class_names[i] for i in data.labels] == fer.names(split)
        assert np.array_equal(data.images, fer.splits[split].images)  # lossless: gray replicated to RGB
        assert np.array_equal(data.images[..., 0], data.images[..., 2])
        assert data.columns["source_row"].tolist() == fer.splits[split].columns["source_row"].tolist()
    assert splits["test"].columns["source_row"][0] == 21  # PrivateTest rows follow 14 + 7 others
    first = (fer.root / "fer2013.csv").read_text().splitlines()[1]
    code = int(first.split(",")[0])
    assert splits["train"].labels[0] == code  # FER2013 order is the native order: codes are indices


def test_fer2013_public_test_as_test_and_other_orders_and_sizes(fer, tmp_path):
    swapped = read("fer2013", fer.root, tmp_path, test_usage="PublicTest")
    assert (len(swapped["test"]), len(swapped["val"])) == (7, 8)
    reordered = read("fer2013", fer.root, tmp_path, class_order="rafdb", image_size=64)["train"]
    native = read("fer2013", fer.root, tmp_path)["train"]
    # FER2013 code -> RAF-DB order index (surprise, fear, disgust, happiness, sadness, anger, neutral)
    to_rafdb = {0: 5, 1: 2, 2: 1, 3: 3, 4: 4, 5: 0, 6: 6}
    assert reordered.labels.tolist() == [to_rafdb[c] for c in native.labels.tolist()]
    assert reordered.images.shape[1:] == (64, 64, 3)


def test_fixture_codes_are_fer2013_documented_codes():
    assert FER2013_CODES == {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5,
                             "neutral": 6}


# FERPlus columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
CLEAN = [[10 if c == k else 0 for c in range(10)] for k in range(8)]  # one clear face per class
SPECIAL = [
    [0, 6, 0, 0, 0, 0, 0, 0, 4, 0],  # happiness under both rules
    [4, 0, 0, 4, 2, 0, 0, 0, 0, 0],  # no majority; plurality tie -> excluded under both
    [5, 1, 1, 1, 1, 1, 0, 0, 0, 0],  # single votes dropped -> 5 of 5: neutral under both
    [3, 2, 2, 2, 1, 0, 0, 0, 0, 0],  # majority: 3 of 9 -> none; plurality: neutral
    [0, 0, 0, 0, 0, 0, 0, 0, 7, 3],  # unknown
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # written without an image name (removed by FERPlus)
    [0, 0, 0, 0, 0, 0, 0, 6, 2, 2],  # contempt
]
TEST_ROWS = [[0, 0, 10, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 10, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 9, 1, 0, 0, 0]]
USAGE = ["Training"] * 16 + ["PublicTest", "PrivateTest", "PrivateTest"]


@pytest.fixture(scope="module")
def ferplus(tmp_path_factory):
    names = [f"fer{i:07d}.png" for i in range(len(USAGE))]
    names[14] = ""
    return write_ferplus(tmp_path_factory.mktemp("ferplus"), votes=np.array(CLEAN + SPECIAL + TEST_ROWS),
                         usage=USAGE, image_names=names)


def test_vote_rules_on_hand_counted_rows():
    assert vote_labels(np.array(SPECIAL), "majority").tolist() == [1, -1, 0, -1, 8, 9, 9, 7]
    assert vote_labels(np.array(SPECIAL), "plurality").tolist() == [1, -1, 0, 0, 8, 9, 9, 7]


def test_ferplus_majority_labels_exclusions_and_distributions(ferplus, tmp_path):
    splits = read("ferplus", ferplus.root, tmp_path)
    train = splits["train"]
    order = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    assert train.class_names == order
    assert train.labels.tolist() == list(range(8)) + [1, 0, 7]
    assert train.columns["source_row"].tolist() == list(range(8)) + [8, 10, 15]
    assert splits["val"].labels.tolist() == [2] and splits["test"].labels.tolist() == [3, 5]
    assert splits.report.excluded == {"no majority label among the votes": 2, "voted unknown or not a face (NF)": 2,
                                      "no image name (removed by FERPlus)": 1}
    assert train.columns["votes"][9].tolist() == [5, 1, 1, 1, 1, 1, 0, 0]
    np.testing.assert_allclose(train.columns["label_dist"][9], [0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(train.columns["label_dist"][8], [0, 1, 0, 0, 0, 0, 0, 0])  # unknown votes not counted
    np.testing.assert_allclose(splits["test"].columns["label_dist"][1], [0, 0, 0, 0, 0, 0.9, 0.1, 0], atol=1e-7)
    gray = ferplus.rows["gray"]
    assert np.array_equal(train.images[9, ..., 0], gray[10])  # sample 9 is the face of fer2013.csv row 10
    fer_names = ferplus.rows["fer2013_names"]
    assert [order[i] for i in train.columns["fer2013_label"]] == [fer_names[r] for r in train.columns["source_row"]]


def test_ferplus_plurality_and_seven_classes(ferplus, tmp_path):
    plurality = read("ferplus", ferplus.root, tmp_path, vote_rule="plurality")["train"]
    assert plurality.labels.tolist() == list(range(8)) + [1, 0, 0, 7]
    seven = read("ferplus", ferplus.root, tmp_path, classes=7)
    assert seven["train"].class_names == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
    assert seven["train"].labels.tolist() == list(range(7)) + [1, 0]
    assert seven.report.excluded["contempt (not among data.classes=7)"] == 2
    assert seven["train"].columns["label_dist"].shape == (9, 7)
    np.testing.assert_allclose(seven["train"].columns["label_dist"].sum(1), 1, atol=1e-6)


def test_ferplus_rows_must_agree_with_fer2013(ferplus, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(ferplus.root, root)
    path = root / "fer2013new.csv"
    original = path.read_text().splitlines()
    lines = list(original)
    lines[3] = lines[3].replace("Training", "PublicTest", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="fer2013new.csv:4: Usage 'PublicTest' differs from 'Training'"):
        read("ferplus", root, tmp_path / "a")
    path.write_text("\n".join(original[:-1]) + "\n")
    with pytest.raises(DataError, match="fer2013new.csv: no FERPlus votes for row 18 of fer2013.csv"):
        read("ferplus", root, tmp_path / "b")
    lines = list(original)
    lines[2] = lines[2].replace(",0,", ",x,", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="fer2013new.csv:3: vote count 'x' for .* is not a non-negative integer"):
        read("ferplus", root, tmp_path / "c")
    skipped = read("ferplus", root, tmp_path / "d", on_bad="skip")
    assert [b.line for b in skipped.report.skipped] == [3] and len(skipped["train"]) == 10
