"""Bad input: each case stops with an error naming the file and line, or is skipped and recorded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from noisyfer.config import DataConfig, build_options
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import write_affectnet, write_fer2013, write_rafdb
from noisyfer.data.readers import SKIPPED_FILE
from noisyfer.errors import DataError, UserError
from noisyfer.registry import DATASETS

LABEL_FILE = "EmoLabel/list_patition_label.txt"


def read(name, root, cache, *, on_bad="error", **options):
    config = DataConfig(name=name, root=None if root is None else str(root), cache_dir=str(cache), on_bad=on_bad)
    return create_dataset(config, build_options(DATASETS.get(name).options, {"workers": 1, **options},
                                                section="data"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_rafdb(tmp_path_factory.mktemp("pristine") / "raf", num_train=21, num_test=14, size=48)


@pytest.fixture
def raf(pristine, tmp_path):
    """A fresh copy of the RAF-DB fixture to damage, with its label lines."""
    root = tmp_path / "raf"
    shutil.copytree(pristine.root, root)
    return root, (root / LABEL_FILE).read_text().splitlines()


def write_lines(root, lines, *, end="\n", bom=False):
    text = end.join(lines) + end
    (root / LABEL_FILE).write_bytes((("\ufeff" if bom else "") + text).encode())


def aligned(root, name):
    return root / "Image/aligned" / name.replace(".jpg", "_aligned.jpg")


def test_missing_root_and_label_file(tmp_path):
    with pytest.raises(UserError, match="data.root: the 'rafdb' dataset needs data.root="):
        read("rafdb", None, tmp_path)
    with pytest.raises(UserError, match="data.root: directory not found: .*nowhere"):
        read("rafdb", tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="list_patition_label.txt: RAF-DB label file .* not found"):
        read("rafdb", tmp_path / "empty", tmp_path)
    with pytest.raises(DataError, match="fer2013.csv: FER2013 file fer2013.csv not found"):
        read("fer2013", tmp_path / "empty", tmp_path)


def test_image_listed_but_absent(raf, tmp_path):
    root, lines = raf
    aligned(root, "train_00003.jpg").unlink()
    with pytest.raises(DataError, match=r"list_patition_label.txt:3: image listed but absent: .*train_00003_aligned.jpg"):
        read("rafdb", root, tmp_path / "c")
    splits = read("rafdb", root, tmp_path / "c", on_bad="skip")
    assert len(splits["train"]) == 20 and "Image/aligned/train_00003_aligned.jpg" not in splits["train"].columns["path"]
    [item] = splits.report.skipped
    assert (item.line, item.item) == (3, "Image/aligned/train_00003_aligned.jpg")
    log = splits.report.write(tmp_path / "run")
    assert log.name == SKIPPED_FILE
    assert [json.loads(line)["line"] for line in log.read_text().splitlines()] == [3]


@pytest.mark.parametrize("damage, reason", [
    ("truncate", "cannot decode image .*train_00004_aligned.jpg: OSError: image file is truncated"),
    ("garbage", "cannot decode image .*train_00004_aligned.jpg: UnidentifiedImageError"),
    ("zero", "empty image file \\(0 bytes\\): .*train_00004_aligned.jpg"),
])
def test_truncated_corrupt_and_empty_images(raf, tmp_path, damage, reason):
    root, lines = raf
    path = aligned(root, "train_00004.jpg")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    else:
        path.write_bytes(b"")
    with pytest.raises(DataError, match="list_patition_label.txt:4: " + reason):
        read("rafdb", root, tmp_path / "c")
    splits = read("rafdb", root, tmp_path / "c", on_bad="skip")
    assert len(splits["train"]) == 20 and [b.line for b in splits.report.skipped] == [4]
    assert splits["train"].columns["path"][3] == "Image/aligned/train_00005_aligned.jpg"


@pytest.mark.parametrize("label, message", [
    ("9", "label 9 of 'train_00002.jpg' is outside 1..7"),
    ("0", "label 0 of 'train_00002.jpg' is outside 1..7"),
    ("happy", "label 'happy' of 'train_00002.jpg' is not an integer"),
    ("2.0", "label '2.0' of 'train_00002.jpg' is not an integer"),
])
def test_label_out_of_range_or_not_an_integer(raf, tmp_path, label, message):
    root, lines = raf
    lines[1] = f"train_00002.jpg {label}"
    write_lines(root, lines)
    with pytest.raises(DataError, match=f"list_patition_label.txt:2: {message}"):
        read("rafdb", root, tmp_path / "c")
    splits = read("rafdb", root, tmp_path / "c", on_bad="skip")
    assert len(splits["train"]) == 20 and splits.report.skipped[0].line == 2


def test_malformed_line_and_unknown_prefix(raf, tmp_path):
    root, lines = raf
    write_lines(root, lines[:5] + ["train_00006.jpg"] + lines[6:])
    with pytest.raises(DataError, match=r":6: expected '<image name> <label 1..7>', got 'train_00006.jpg'"):
        read("rafdb", root, tmp_path / "c")
    write_lines(root, lines[:5] + ["val_0006.jpg 3"] + lines[6:])
    with pytest.raises(DataError, match=":6: cannot tell the split of 'val_0006.jpg'"):
        read("rafdb", root, tmp_path / "c")


def test_crlf_line_ends_and_utf8_bom_are_accepted(raf, tmp_path):
    root, lines = raf
    reference = read("rafdb", root, tmp_path / "a")
    write_lines(root, lines, end="\r\n", bom=True)
    windows = read("rafdb", root, tmp_path / "b")
    for split in ("train", "test"):
        assert np.array_equal(windows[split].labels, reference[split].labels)
        assert np.array_equal(windows[split].images, reference[split].images)
    write_lines(root, [lines[0]] + ["", "   "] + lines[1:])  # blank lines carry no item
    assert len(read("rafdb", root, tmp_path / "c")["train"]) == 21


def test_duplicate_entries(raf, tmp_path):
    root, lines = raf
    write_lines(root, lines + [lines[6]])
    n = len(lines) + 1
    with pytest.raises(DataError, match=f":{n}: image 'train_00007.jpg' listed again \\(first on line 7\\)"):
        read("rafdb", root, tmp_path / "c")
    splits = read("rafdb", root, tmp_path / "c", on_bad="skip")
    assert len(splits["train"]) == 21 and [b.line for b in splits.report.skipped] == [n]
    name, code = lines[6].split()
    write_lines(root, lines + [f"{name} {int(code) % 7 + 1}"])
    with pytest.raises(DataError, match=f":{n}: image 'train_00007.jpg' listed again .* with another label"):
        read("rafdb", root, tmp_path / "d")
    splits = read("rafdb", root, tmp_path / "d", on_bad="skip")  # conflicting: neither label is trusted
    assert len(splits["train"]) == 20 and sorted(b.line for b in splits.report.skipped) == [7, n]


def test_wrong_csv_header_stops_even_when_skipping(tmp_path):
    tree = write_fer2013(tmp_path / "fer")
    path = tree.root / "fer2013.csv"
    text = path.read_text().split("\n", 1)
    path.write_text("emotion,pixel,Usage\n" + text[1])
    for on_bad in ("error", "skip"):
        with pytest.raises(DataError, match="fer2013.csv:1: wrong header 'emotion,pixel,Usage': expected columns "
                                            "emotion, pixels, Usage"):
            read("fer2013", tree.root, tmp_path / "c", on_bad=on_bad)
    aff = write_affectnet(tmp_path / "aff", num_train=8, num_val=8, no_class_rows=())
    csv_path = aff.root / "Manually_Annotated_file_lists/training.csv"
    rows = csv_path.read_text().split("\n", 1)
    csv_path.write_text(rows[0].replace("expression", "emotion") + "\n" + rows[1])
    with pytest.raises(DataError, match="training.csv:1: wrong header .* expected columns subDirectory_filePath"):
        read("affectnet", aff.root, tmp_path / "c")


def test_pixel_string_of_the_wrong_length_or_values(tmp_path):
    tree = write_fer2013(tmp_path / "fer")
    path = tree.root / "fer2013.csv"
    rows = path.read_text().splitlines()
    emotion, pixels, usage = rows[3].split(",")
    rows[3] = f"{emotion},{pixels.rsplit(' ', 1)[0]},{usage}"  # 2303 values
    emotion, pixels, usage = rows[5].split(",")
    rows[5] = f"{emotion},300 {pixels.split(' ', 1)[1]},{usage}"  # 2304 values, the first is 300
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="fer2013.csv:4: pixel string has 2303 values, expected 2304"):
        read("fer2013", tree.root, tmp_path / "c")
    splits = read("fer2013", tree.root, tmp_path / "c", on_bad="skip")
    assert [b.line for b in splits.report.skipped] == [4, 6]
    assert "pixel value 300 is outside 0..255" in splits.report.skipped[1].reason
    assert len(splits["train"]) == 12 and 2 not in splits["train"].columns["source_row"]


def test_empty_split(raf, tmp_path):
    root, lines = raf
    write_lines(root, [line for line in lines if line.startswith("train_")])
    with pytest.raises(DataError, match="list_patition_label.txt: the 'test' split of dataset 'rafdb' is empty"):
        read("rafdb", root, tmp_path / "c")


def test_a_class_with_no_training_sample(raf, tmp_path):
    root, lines = raf
    write_lines(root, [line for line in lines if not (line.startswith("train_") and line.endswith(" 2"))])
    with pytest.raises(DataError, match="class\\(es\\) fear have no training sample"):
        read("rafdb", root, tmp_path / "c")


def test_everything_skipped_is_an_empty_split_not_a_silent_success(raf, tmp_path):
    root, lines = raf
    for line in lines:
        if line.startswith("test_"):
            aligned(root, line.split()[0]).write_bytes(b"")
    with pytest.raises(DataError, match="the 'test' split of dataset 'rafdb' is empty"):
        read("rafdb", root, tmp_path / "c", on_bad="skip")
