"""RAF-DB reader on fixture trees: counts, split, class mapping, layouts, RAF-DB-format noise files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import noisyfer
from noisyfer.config import DataConfig, build_options, config_from_args
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import RAFDB_CODES, write_rafdb
from noisyfer.engine.build import make_training_labels
from noisyfer.errors import DataError, UserError
from noisyfer.registry import DATASETS

LABEL_FILE = "EmoLabel/list_patition_label.txt"


def read(root, cache, *, on_bad="error", image_size=None, **options):
    config = DataConfig(name="rafdb", root=str(root), cache_dir=str(cache), on_bad=on_bad, image_size=image_size)
    return create_dataset(config, build_options(DATASETS.get("rafdb").options, {"workers": 1, **options},
                                                section="data"))


@pytest.fixture(scope="module")
def raf(tmp_path_factory):
    return write_rafdb(tmp_path_factory.mktemp("raf") / "RAF-DB", num_train=21, num_test=14)


def test_counts_split_labels_paths_and_pixels(raf, tmp_path):
    splits = read(raf.root, tmp_path)
    assert sorted(splits) == ["test", "train"]
    assert (len(splits["train"]), len(splits["test"])) == (21, 14)
    for split in ("train", "test"):
        data = splits[split]
        assert data.class_names == ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
        assert [data.class_names[i] for i in data.labels] == raf.names(split)
        assert data.columns["path"].tolist() == raf.splits[split].columns["path"].tolist()
        assert data.images.shape[1:] == (100, 100, 3)  # aligned RAF-DB is 100x100: the default size
        error = np.abs(data.images.astype(np.int16) - raf.splits[split].images).mean()
        assert error < 4  # JPEG quality 95; a wrong image or order would differ by tens of levels
    assert splits["train"].columns["path"][0] == "Image/aligned/train_00001_aligned.jpg"
    assert splits["test"].columns["path"][0] == "Image/aligned/test_0001_aligned.jpg"


def test_label_codes_map_to_rafdb_order_and_to_other_orders(raf, tmp_path):
    lines = (raf.root / LABEL_FILE).read_text().split("\n")
    code = int(lines[0].split()[1])
    name = {v: k for k, v in RAFDB_CODES.items()}[code]
    native = read(raf.root, tmp_path)["train"]
    assert native.labels[0] == code - 1  # RAF-DB order: code 1..7 -> index 0..6
    assert native.class_names[native.labels[0]] == name
    affectnet = read(raf.root, tmp_path, class_order="affectnet")["train"]
    assert affectnet.class_names == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
    # surprise: RAF-DB code 1 -> index 3 in AffectNet order; neutral: code 7 -> 0
    lut = {1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6, 7: 0}
    codes = np.array([int(line.split()[1]) for line in lines if line.startswith("train_")])
    assert affectnet.labels.tolist() == [lut[c] for c in codes]
    assert np.array_equal(affectnet.images, native.images)


def test_resolved_class_order_is_written_into_the_run_config(raf, tmp_path):
    cfg = config_from_args(None, ["data=rafdb", f"data.root={raf.root}", "data.class_order=affectnet"])
    assert cfg.data_options.class_order == ["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"]
    assert "- surprise" in cfg.to_yaml()
    again = config_from_args(None, [f"data.{k}={json.dumps(v)}" if k == "class_order" else f"data.{k}={v}"
                                    for k, v in cfg.to_dict()["data"].items() if v is not None])
    assert again.data_options == cfg.data_options
    with pytest.raises(UserError, match="data.class_order.*missing"):
        config_from_args(None, ["data=rafdb", "data.class_order=[neutral,happiness]"])
    with pytest.raises(UserError, match="unknown order 'imagenet'"):
        config_from_args(None, ["data=rafdb", "data.class_order=imagenet"])


def test_original_images_are_the_fallback(tmp_path):
    tree = write_rafdb(tmp_path / "raf", num_train=14, num_test=7, size=64, layout="original")
    splits = read(tree.root, tmp_path / "cache")
    assert splits["train"].columns["path"][0] == "Image/original/train_00001.jpg"
    assert splits["train"].images.shape[1:] == (100, 100, 3)  # resized to RAF-DB's size
    assert splits.info["images"] == "Image/original"
    with pytest.raises(DataError, match="data.images=aligned but the directory Image/aligned is missing"):
        read(tree.root, tmp_path / "cache", images="aligned")


def _noisy_lines(raf, flips: dict[int, int]) -> list[str]:
    """The train lines of the fixture with line i relabelled to code flips[i]."""
    lines = [line for line in (raf.root / LABEL_FILE).read_text().split("\n") if line.startswith("train_")]
    out = []
    for i, line in enumerate(lines):
        name, code = line.split()
        out.append(f"{name} {flips.get(i, code)}")
    return out


def _cfg(raf, tmp_path, noise_file, *extra):
    return config_from_args(None, ["data=rafdb", f"data.root={raf.root}", f"data.cache_dir={tmp_path / 'cache'}",
                                   "data.workers=1", f"noise.file={noise_file}", *extra])


def test_rafdb_format_noise_file_matches_training_images_by_name(raf, tmp_path):
    train = read(raf.root, tmp_path / "cache", class_order="affectnet")["train"]
    original_codes = [int(line.split()[1]) for line in _noisy_lines(raf, {})]
    flips = {0: original_codes[0] % 7 + 1, 5: original_codes[5] % 7 + 1}  # two labels moved to the next code
    lines = _noisy_lines(raf, flips)[::-1]  # order does not matter: matched by file name
    path = tmp_path / "raf_noise.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())  # BOM + CRLF, as Windows tools write
    labels = make_training_labels(_cfg(raf, tmp_path, path, "data.class_order=affectnet"), train)
    lut = {1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6, 7: 0}
    expected = train.labels.copy()
    expected[0], expected[5] = lut[flips[0]], lut[flips[5]]
    assert labels.kind == "file" and labels.labels.tolist() == expected.tolist()
    assert labels.original.tolist() == train.labels.tolist()
    assert labels.realized_rate == pytest.approx(2 / 21)
    assert labels.params["format"] == "rafdb" and labels.params["skipped_lines"] == []


def test_rafdb_format_noise_file_must_cover_the_training_split_once(raf, tmp_path):
    train = read(raf.root, tmp_path / "cache")["train"]
    lines = _noisy_lines(raf, {})
    path = tmp_path / "noise.txt"
    path.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataError, match="1 of 21 training samples have no line .*train_00001.jpg"):
        make_training_labels(_cfg(raf, tmp_path, path), train)
    path.write_text("\n".join(lines + [lines[3]]) + "\n")
    with pytest.raises(DataError, match=r"noise.txt:22: training image 'train_00004.jpg' listed again \(first on line 4\)"):
        make_training_labels(_cfg(raf, tmp_path, path), train)
    path.write_text("\n".join(lines + ["test_0001.jpg 3"]) + "\n")
    with pytest.raises(DataError, match="noise.txt:22: 'test_0001.jpg' is not an image of the training split"):
        make_training_labels(_cfg(raf, tmp_path, path), train)
    skipped = make_training_labels(_cfg(raf, tmp_path, path, "data.on_bad=skip"), train)
    assert skipped.realized_rate == 0 and len(skipped.params["skipped_lines"]) == 1
    path.write_text("\n".join(lines[:-1] + [lines[-1].split()[0] + " 8"]) + "\n")
    with pytest.raises(DataError, match="noise.txt:21: label 8 of 'train_00021.jpg' is outside 1..7"):
        make_training_labels(_cfg(raf, tmp_path, path), train)
    path.write_text("train_00001.jpg,5\n")
    with pytest.raises(DataError, match="unrecognised noisy-label file"):
        make_training_labels(_cfg(raf, tmp_path, path), train)


def test_training_run_on_rafdb_with_a_rafdb_noise_file(raf, tmp_path):
    lines = _noisy_lines(raf, {2: 1})
    path = tmp_path / "noise.txt"
    path.write_text("\n".join(lines) + "\n")
    cfg = _cfg(raf, tmp_path, path, "data.image_size=32", "model.backbone=resnet_tiny", "train.batch_size=8",
               "train.epochs=1", f"out={tmp_path / 'runs'}")
    run = noisyfer.train(cfg).run_dir
    saved = (run / "train_labels.csv").read_text().splitlines()
    assert len(saved) == 22 and saved[0] == "index,label,original_label"
    given = [int(line.split(",")[1]) for line in saved[1:]]
    original = [int(line.split(",")[2]) for line in saved[1:]]
    assert given[2] == 0 and sum(g != o for g, o in zip(given, original)) == (original[2] != 0)
    assert json.loads((run / "train_labels.json").read_text())["kind"] == "file"


def test_a_copy_at_another_root_is_read_too(raf, tmp_path):
    shutil.copytree(raf.root, tmp_path / "copy")
    assert len(read(tmp_path / "copy", tmp_path / "cache")["train"]) == 21
