"""SFEW, generic class folders, CSV lists, and the image conversions every reader relies on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from noisyfer.config import DataConfig, build_options
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import write_csv_list, write_folder, write_sfew
from noisyfer.data.readers.decode import decode_image
from noisyfer.errors import DataError
from noisyfer.registry import DATASETS


def read(name, root, cache, *, image_size=None, on_bad="error", **options):
    config = DataConfig(name=name, root=str(root), cache_dir=str(cache), image_size=image_size, on_bad=on_bad)
    return create_dataset(config, build_options(DATASETS.get(name).options, {"workers": 1, **options},
                                                section="data"))


def test_sfew_class_folders(tmp_path):
    tree = write_sfew(tmp_path / "SFEW", num_train=14, num_val=7, size=64)
    splits = read("sfew", tree.root, tmp_path / "cache", image_size=64)
    assert {k: len(v) for k, v in splits.items()} == {"train": 14, "test": 7}
    for split in ("train", "test"):
        data = splits[split]
        assert data.class_names == ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
        assert [data.class_names[i] for i in data.labels] == tree.names(split)
        assert data.columns["path"].tolist() == tree.splits[split].columns["path"].tolist()
        assert np.array_equal(data.images, tree.splits[split].images)  # PNG, no resize: exact
    assert splits["train"].columns["path"][0].startswith("Train/Angry/")
    assert read("sfew", tree.root, tmp_path / "cache")["train"].images.shape[1:] == (112, 112, 3)


def test_sfew_missing_class_and_unknown_folder(tmp_path):
    tree = write_sfew(tmp_path / "SFEW", num_train=14, num_val=7, size=48)
    (tree.root / "Train" / "Bored").mkdir()
    (tree.root / "Train" / "Bored" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="Train/Bored: folder 'Bored' is not one of the classes"):
        read("sfew", tree.root, tmp_path / "cache")
    skipped = read("sfew", tree.root, tmp_path / "cache", on_bad="skip")
    assert len(skipped["train"]) == 14 and len(skipped.report.skipped) == 1
    shutil.rmtree(tree.root / "Train" / "Bored")
    shutil.rmtree(tree.root / "Train" / "Fear")
    with pytest.raises(DataError, match="fear have no training sample"):
        read("sfew", tree.root, tmp_path / "cache")


def test_folder_tree_names_aliases_and_ignored_files(tmp_path):
    tree = write_folder(tmp_path / "tree", num_train=14, num_test=7, size=48, suffix=".jpg")
    (tree.root / "train" / "happiness").rename(tree.root / "train" / "Happy")  # an alias spelling
    (tree.root / "train" / "anger" / "notes.txt").write_text("not an image")
    (tree.root / "test" / "README").write_text("not a class")
    splits = read("folder", tree.root, tmp_path / "cache", image_size=48)
    assert splits["train"].class_names == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
    names = [splits["train"].class_names[i] for i in splits["train"].labels]
    assert sorted(names) == sorted(tree.names("train")) and len(names) == 14
    assert sorted(splits.report.ignored) == ["test/README", "train/anger/notes.txt"]
    assert splits.info["report"]["ignored"] == splits.report.ignored
    with pytest.raises(DataError, match="split folder 'valid' not found"):
        read("folder", tree.root, tmp_path / "cache", val_dir="valid")


def test_csv_lists_with_names_or_indices(tmp_path):
    for labels_as in ("name", "index"):
        tree = write_csv_list(tmp_path / labels_as, num_train=14, num_test=7, size=48, labels_as=labels_as)
        splits = read("csv", tree.root, tmp_path / "cache", image_size=48)
        for split in ("train", "test"):
            data = splits[split]
            assert [data.class_names[i] for i in data.labels] == tree.names(split)
            np.testing.assert_array_equal(data.columns["valence"], tree.splits[split].columns["valence"])
            np.testing.assert_array_equal(data.columns["arousal"], tree.splits[split].columns["arousal"])
            assert np.array_equal(data.images, tree.splits[split].images)
    raf = read("csv", tmp_path / "index", tmp_path / "cache", image_size=48, class_order="rafdb")["train"]
    # indices refer to data.class_order, so the same file read with another order means other classes
    assert raf.class_names[raf.labels[0]] == ("surprise", "fear", "disgust", "happiness", "sadness", "anger",
                                             "neutral")[int((tmp_path / "index/train.csv").read_text().splitlines()[1]
                                                            .split(",")[1])]


def test_csv_header_and_label_errors(tmp_path):
    tree = write_csv_list(tmp_path / "lists", num_train=14, num_test=7, size=48)
    path = tree.root / "train.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["path,label,valence"] + lines[1:]) + "\n")
    with pytest.raises(DataError, match="train.csv:1: wrong header 'path,label,valence'"):
        read("csv", tree.root, tmp_path / "cache")
    bad = list(lines)
    bad[2] = bad[2].split(",")[0] + ",7,0.1,0.2"
    bad[3] = bad[3].split(",")[0] + ",bored,0.1,0.2"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(DataError, match=r"train.csv:3: label 7 is outside 0..6 \(data.class_order\)"):
        read("csv", tree.root, tmp_path / "cache")
    skipped = read("csv", tree.root, tmp_path / "cache", on_bad="skip")
    assert [b.line for b in skipped.report.skipped] == [3, 4]
    assert "class 'bored' is not among" in skipped.report.skipped[1].reason  # any name may be a class (data.classes)


def test_conversions_to_rgb(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    assert np.array_equal(decode_image(tmp_path / "gray.png", 8), np.repeat(gray[..., None], 3, axis=2))
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[...] = (200, 100, 50, 0)  # fully transparent: convert("RGB") keeps the colour, drops alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert decode_image(tmp_path / "rgba.png", 8).reshape(-1, 3).tolist() == [[200, 100, 50]] * 64
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "cmyk.jpg", quality=100)
    assert np.abs(decode_image(tmp_path / "cmyk.jpg", 16).astype(int) - [255, 0, 0]).max() <= 3
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30])
    palette.save(tmp_path / "palette.png")
    assert decode_image(tmp_path / "palette.png", 8).reshape(-1, 3).tolist() == [[10, 20, 30]] * 64
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    expected = np.rint(deep / 257.0).astype(np.uint8)
    assert np.array_equal(decode_image(tmp_path / "deep.png", 8)[..., 1], expected)
    assert decode_image(tmp_path / "gray.png", 4).shape == (4, 4, 3)


def test_large_jpegs_are_downscaled_while_decoding_to_the_same_picture(tmp_path):
    yy, xx = np.mgrid[0:800, 0:800]
    smooth = np.stack([xx * 255 // 800, yy * 255 // 800, (xx + yy) * 255 // 1600], axis=2).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=95)
    fast = decode_image(tmp_path / "big.jpg", 100).astype(int)
    reference = np.asarray(Image.fromarray(smooth).resize((100, 100), Image.BILINEAR)).astype(int)
    assert np.abs(fast - reference).mean() < 2
    crop = decode_image(tmp_path / "big.jpg", 50, box=(400, 0, 800, 400)).astype(int)
    reference = np.asarray(Image.fromarray(smooth[0:400, 400:800]).resize((50, 50), Image.BILINEAR)).astype(int)
    assert np.abs(crop - reference).mean() < 2
