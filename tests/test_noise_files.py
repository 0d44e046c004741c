"""Noisy-label files (CSV + JSON sidecar) and noise applied to dataset splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from noisyfer.data.classes import BASIC7, BASIC8
from noisyfer.data.format import FERData
from noisyfer.errors import DataError, UserError
from noisyfer.noise import (
    ORIGINAL_LABEL_COLUMN,
    apply_noise,
    labels_sha256,
    load_noisy_labels,
    noise_from_dataset,
    read_label_file,
    save_noisy_labels,
    sidecar_path,
    with_noisy_labels,
)


def small_result(**kwargs):
    labels = np.random.default_rng(0).integers(0, 8, size=400)
    arguments = dict(kind="asymmetric", rate=0.3, seed=7, class_names=BASIC8, exact=True) | kwargs
    return apply_noise(labels, **arguments)


def assert_same(a, b):
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.original, b.original)
    np.testing.assert_array_equal(a.transition, b.transition)
    assert a.to_json() == b.to_json()


# --- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"kind": "symmetric", "exact": False}, {"kind": "uniform"}, {"kind": "none", "rate": 0.0, "exact": False}],
    ids=["asymmetric-exact", "symmetric", "uniform-exact", "none"],
)
def test_save_load_round_trip_is_exact(tmp_path, kwargs):
    result = small_result(**kwargs)
    path = save_noisy_labels(result, tmp_path / "sub" / "noisy.csv")
    assert sidecar_path(path) == tmp_path / "sub" / "noisy.json"
    loaded = load_noisy_labels(path, num_samples=400, num_classes=8)
    assert_same(result, loaded)


def test_file_content_by_hand(tmp_path):
    result = apply_noise([0, 1, 1], kind="crowd", rate=0.0, seed=0, class_names=("a", "b"), crowd_labels=[1, 1, 0])
    path = save_noisy_labels(result, tmp_path / "n.csv")
    assert path.read_text() == "index,label,original_label\n0,1,0\n1,1,1\n2,0,1\n"
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["transition"] == [[0.0, 1.0], [0.5, 0.5]]
    assert meta["realized_rate"] == pytest.approx(2 / 3)
    assert meta["num_samples"] == 3 and meta["kind"] == "crowd" and meta["seed"] == 0
    assert meta["original_sha256"] == labels_sha256(np.array([0, 1, 1]))


def test_crlf_bom_and_any_line_order_are_accepted(tmp_path):
    path = tmp_path / "n.csv"
    path.write_bytes(b"\xef\xbb\xbfindex,label,original_label\r\n1,0,0\r\n0, 2 ,1\r\n\r\n")
    labels, original = read_label_file(path, num_samples=2, num_classes=3)
    np.testing.assert_array_equal(labels, [2, 0])
    np.testing.assert_array_equal(original, [1, 0])


def test_save_refuses_json_name(tmp_path):
    with pytest.raises(DataError, match=".json"):
        save_noisy_labels(small_result(), tmp_path / "noisy.json")


# --- malformed label files -----------------------------------------------------------------------

GOOD = ["index,label,original_label", "0,1,1", "1,2,0", "2,0,0"]


@pytest.mark.parametrize(
    "lines, line, message",
    [
        (["idx,label,original_label", *GOOD[1:]], 1, "header"),
        ([], 1, "empty file"),
        ([GOOD[0], "0,1,1", "1,x,0", "2,0,0"], 3, "label 'x' is not an integer"),
        ([GOOD[0], "0,1,1", "1,2.0,0", "2,0,0"], 3, "not an integer"),
        ([GOOD[0], "0,1,1", "1,2", "2,0,0"], 3, "3 comma-separated"),
        ([GOOD[0], "0,1,1", "1,2,0,4", "2,0,0"], 3, "got 4 field"),
        ([GOOD[0], "0,1,1", "", "2,0,0"], 3, "got 1 field"),
        ([GOOD[0], "0,1,1", "1,99999999999999999999,0", "2,0,0"], 3, "too large"),
        ([GOOD[0], "0,1,1", "1,3,0", "2,0,0"], 3, "label 3 is outside 0..2"),
        ([GOOD[0], "0,1,1", "1,2,-1", "2,0,0"], 3, "original_label -1 is outside 0..2"),
        ([GOOD[0], "0,1,1", "1,2,0", "1,0,0"], 4, "index 1 repeats the index of line 3"),
        ([GOOD[0], "0,1,1", "1,2,0", "5,0,0"], 4, "index 5 is outside 0..2"),
        ([GOOD[0], "0,1,1", "2,0,0"], 3, "2 samples, expected 3 (index 1 missing)"),
        ([*GOOD, "3,0,0"], 5, "index 3 is outside 0..2"),
    ],
    ids=[
        "header", "empty", "letter", "float", "too-few-fields", "too-many-fields", "blank-line", "overflow",
        "label-range", "negative", "duplicate", "index-range", "missing", "extra-line",
    ],
)
def test_malformed_label_file_names_file_and_line(tmp_path, lines, line, message):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(DataError) as info:
        read_label_file(path, num_samples=3, num_classes=3)
    text = str(info.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text


def test_missing_label_file_names_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_label_file(tmp_path / "absent.csv")


def test_count_taken_from_file_without_num_samples(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("index,label,original_label\n0,7,7\n1,3,4\n")
    labels, original = read_label_file(path)
    np.testing.assert_array_equal(labels, [7, 3])


# --- sidecar consistency -------------------------------------------------------------------------


def test_missing_sidecar_raises(tmp_path):
    path = save_noisy_labels(small_result(), tmp_path / "n.csv")
    sidecar_path(path).unlink()
    with pytest.raises(DataError, match="sidecar"):
        load_noisy_labels(path)


def test_hand_edited_labels_disagree_with_sidecar(tmp_path):
    path = save_noisy_labels(small_result(), tmp_path / "n.csv")
    lines = path.read_text().splitlines()
    index, label, original = map(int, lines[1].split(","))
    lines[1] = f"{index},{(label + 1) % 8},{original}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="disagree"):
        load_noisy_labels(path)


def test_edited_original_labels_fail_checksum(tmp_path):
    path = save_noisy_labels(small_result(), tmp_path / "n.csv")
    lines = path.read_text().splitlines()
    index, label, original = map(int, lines[1].split(","))
    lines[1] = f"{index},{label},{(original + 1) % 8}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="original_sha256"):
        load_noisy_labels(path)


@pytest.mark.parametrize("kwargs, message", [({"num_samples": 10}, "num_samples"), ({"num_classes": 7}, "classes")])
def test_load_checks_expected_shape(tmp_path, kwargs, message):
    path = save_noisy_labels(small_result(), tmp_path / "n.csv")
    with pytest.raises(DataError, match=message):
        load_noisy_labels(path, **kwargs)


@pytest.mark.parametrize("edit", ["drop-kind", "bad-format", "not-json", "seed-type"])
def test_malformed_sidecar_raises(tmp_path, edit):
    path = save_noisy_labels(small_result(), tmp_path / "n.csv")
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    if edit == "drop-kind":
        del meta["kind"]
    elif edit == "bad-format":
        meta["format"] = "other"
    elif edit == "seed-type":
        meta["seed"] = "7"
    side.write_text("{" if edit == "not-json" else json.dumps(meta))
    with pytest.raises(DataError, match=str(side)):
        load_noisy_labels(path)


# --- datasets ------------------------------------------------------------------------------------


def tiny_dataset(n: int = 600, **columns) -> FERData:
    labels = np.random.default_rng(1).integers(0, 7, size=n)
    images = np.zeros((n, 2, 2, 3), dtype=np.uint8)
    return FERData(images=images, labels=labels, class_names=BASIC7, columns=columns)


def test_instance_noise_takes_label_dist_column():
    data = tiny_dataset()
    dist = np.full((len(data), 7), 0.1, dtype=np.float32)
    dist[np.arange(len(data)), data.labels] = 0.4
    data.columns["label_dist"] = dist
    from_column = noise_from_dataset(data, kind="instance", rate=0.3, seed=2)
    given = apply_noise(data.labels, kind="instance", rate=0.3, seed=2, class_names=BASIC7, probs=dist)
    np.testing.assert_array_equal(from_column.labels, given.labels)


def test_instance_noise_takes_npy_file(tmp_path):
    data = tiny_dataset()
    probs = np.random.default_rng(0).dirichlet(np.ones(7), size=len(data))
    np.save(tmp_path / "p.npy", probs)
    from_file = noise_from_dataset(data, kind="instance", rate=0.3, seed=2, probs=tmp_path / "p.npy")
    from_array = noise_from_dataset(data, kind="instance", rate=0.3, seed=2, probs=probs)
    np.testing.assert_array_equal(from_file.labels, from_array.labels)
    np.save(tmp_path / "short.npy", probs[:10])
    with pytest.raises(DataError, match="short.npy"):
        noise_from_dataset(data, kind="instance", rate=0.3, seed=2, probs=tmp_path / "short.npy")


def test_crowd_noise_takes_crowd_label_column():
    data = tiny_dataset()
    crowd = np.roll(data.labels, 1)
    data.columns["crowd_label"] = crowd
    result = noise_from_dataset(data, kind="crowd", rate=0.0, seed=0)
    np.testing.assert_array_equal(result.labels, crowd)
    assert result.realized_rate == pytest.approx((crowd != data.labels).mean())


@pytest.mark.parametrize("kind, message", [("instance", "no 'label_dist' column"), ("crowd", "no 'crowd_label' column")])
def test_dataset_without_needed_column_raises(kind, message):
    with pytest.raises(UserError, match=message):
        noise_from_dataset(tiny_dataset(), kind=kind, rate=0.0 if kind == "crowd" else 0.2, seed=0)


def test_with_noisy_labels_replaces_labels_and_keeps_originals(tmp_path):
    data = tiny_dataset()
    noisy = noise_from_dataset(data, kind="symmetric", rate=0.4, seed=0)
    path = save_noisy_labels(noisy, tmp_path / "n.csv")
    out = with_noisy_labels(data, load_noisy_labels(path, num_samples=len(data)))
    np.testing.assert_array_equal(out.labels, noisy.labels)
    np.testing.assert_array_equal(out.columns[ORIGINAL_LABEL_COLUMN], data.labels)
    assert out.images is data.images


def test_with_noisy_labels_rejects_labels_of_another_split():
    data = tiny_dataset()
    other = tiny_dataset()
    other.labels = np.roll(other.labels, 3)
    noisy = noise_from_dataset(other, kind="symmetric", rate=0.4, seed=0)
    with pytest.raises(UserError, match="first difference"):
        with_noisy_labels(data, noisy)
