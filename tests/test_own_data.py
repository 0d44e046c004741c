"""Issue 17, your own data: any class names, ImageFolder layouts (with or without split folders, numbered
folders), a held-out test split, cross-dataset evaluation and what eval --split train scores against."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import noisyfer
from noisyfer.cli.main import main
from noisyfer.config import DataConfig, build_options, config_from_args
from noisyfer.data.datasets import create_dataset, hold_out_test
from noisyfer.errors import DataError, UserError
from noisyfer.registry import DATASETS

from .conftest import make_tiny_split


def write_tree(root: Path, folders: dict[str, str], *, per_class: int, seed: int = 0, split_dirs=("",),
               size: int = 16) -> None:
    """``root/<split>/<folder>/NNN.png``: the tiny learnable images of tiny class ``c`` for ``folders[c]``."""
    tiny = make_tiny_split(7 * per_class * len(split_dirs), size=size, seed=seed)
    for s, split in enumerate(split_dirs):
        for c, folder in enumerate(folders.values()):
            rows = np.flatnonzero(tiny.labels == c)[s * per_class:(s + 1) * per_class]
            target = root / split / folder
            target.mkdir(parents=True, exist_ok=True)
            for k, i in enumerate(rows):
                Image.fromarray(tiny.images[i]).save(target / f"{c}_{k:03d}.png")


def read(root: Path, tmp_path: Path, **options):
    config = DataConfig(name="folder", root=str(root), cache_dir=str(tmp_path / "cache"),
                        **{k: options.pop(k) for k in ("test_fraction", "split_seed") if k in options})
    opts = build_options(DATASETS.get("folder").options, {"workers": 1, **options}, section="data")
    return create_dataset(config, opts)


SENTIMENT = {"a": "Positive", "b": "negative", "c": "neutral"}


def test_imagefolder_without_split_folders_any_class_names_stratified_seeded_test_split(tmp_path):
    root = tmp_path / "faces"
    write_tree(root, SENTIMENT, per_class=10)
    splits = read(root, tmp_path)
    assert splits["train"].class_names == ("negative", "neutral", "positive")  # sorted, lower-cased
    assert np.bincount(splits["test"].labels).tolist() == [2, 2, 2]            # 0.2 of 10 per class
    assert np.bincount(splits["train"].labels).tolist() == [8, 8, 8]
    assert splits.info["test_split"] == {"held_out_fraction": 0.2, "split_seed": 0, "train": 24, "test": 6}
    again = read(root, tmp_path)
    assert np.array_equal(again["test"].images, splits["test"].images)
    other = read(root, tmp_path, split_seed=1, test_fraction=0.3)
    assert np.bincount(other["test"].labels).tolist() == [3, 3, 3]
    assert not np.array_equal(other["test"].images[:2], splits["test"].images[:2])


def test_hold_out_test_keeps_every_class_in_training_and_partitions_the_samples():
    data = make_tiny_split(23, size=16)
    train, test = hold_out_test(data, fraction=0.5, seed=3)
    assert len(train) + len(test) == 23
    assert set(np.unique(train.labels)) == set(range(7))
    per_class = np.bincount(data.labels, minlength=7)
    assert np.bincount(test.labels, minlength=7).tolist() == [min(max(round(0.5 * n), 1), n - 1) for n in per_class]


def test_numbered_class_folders_are_rafdb_codes_by_default_and_other_numbers_need_folder_codes(tmp_path):
    raf = tmp_path / "raf"
    write_tree(raf, {c: str(c + 1) for c in range(7)}, per_class=3, split_dirs=("train", "test"))
    splits = read(raf, tmp_path)
    assert splits["train"].class_names == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
    # images are read in sorted path order: folders 1, 2, ... 7 are RAF-DB's surprise, fear, ... neutral
    train = splits["train"]
    names = [train.class_names[label] for label in train.labels]
    assert names == [n for n in ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
                     for _ in range(3)]
    assert splits.info["classes_from"] == "numbered folders read as rafdb's codes"
    zero = tmp_path / "zero"
    write_tree(zero, {c: str(c) for c in range(7)}, per_class=2, split_dirs=("train", "test"))
    with pytest.raises(DataError, match="data.folder_codes=fer2013"):
        read(zero, tmp_path)
    fer = read(zero, tmp_path, folder_codes="fer2013")
    assert sorted(fer["train"].class_names) == sorted(splits["train"].class_names)
    custom = read(zero, tmp_path, folder_codes={i: f"c{i}" for i in range(7)})
    assert custom["train"].class_names == tuple(f"c{i}" for i in range(7))


def test_a_folder_outside_the_given_classes_stops_with_a_message_that_says_so(tmp_path):
    root = tmp_path / "tree"
    write_tree(root, {0: "happy", 1: "sad", 2: "bored"}, per_class=2, split_dirs=("train", "test"))
    with pytest.raises(DataError) as info:
        read(root, tmp_path, classes=["happiness", "sadness"])
    assert "folder 'bored' is not one of the classes (happiness, sadness; data.classes)" in str(info.value)
    assert "left out" not in str(info.value)


def test_twelve_classes_from_a_csv_list_and_a_test_fraction_with_a_test_split_is_refused(tmp_path):
    names = [f"expr{i:02d}" for i in range(12)]
    root = tmp_path / "lists"
    tiny = make_tiny_split(48, size=16)
    (root / "img").mkdir(parents=True)
    lines = ["path,label"]
    for i in range(49):
        Image.fromarray(tiny.images[i % 48]).save(root / "img" / f"{i}.png")
        lines.append(f"img/{i}.png,{names[i % 12]}")
    lines.pop()  # image 48 is the one of the test list below
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    config = DataConfig(name="csv", root=str(root), cache_dir=str(tmp_path / "cache"), test_fraction=0.25)
    opts = build_options(DATASETS.get("csv").options, {"classes": names, "workers": 1}, section="data")
    splits = create_dataset(config, opts)
    assert splits["train"].class_names == tuple(names)
    assert np.bincount(splits["test"].labels, minlength=12).tolist() == [1] * 12
    (root / "test.csv").write_text("path,label\nimg/48.png,expr00\n")
    with pytest.raises(UserError, match="data.test_fraction: dataset 'csv' has its own test split"):
        create_dataset(config, opts)


def _train_on(root: Path, tmp_path: Path, *extra: str):
    cfg = config_from_args(None, ["data=folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                                  "data.image_size=16", "data.workers=1", "model.backbone=resnet_tiny",
                                  "train.batch_size=8", "train.epochs=2", "train.lr=0.003", "train.log_every=2",
                                  f"out={tmp_path / 'runs'}", *extra])
    return noisyfer.train(cfg)


def test_train_on_own_classes_then_cross_dataset_eval_maps_classes_by_name(tmp_path, capsys):
    source = tmp_path / "source"
    write_tree(source, SENTIMENT, per_class=12)
    result = _train_on(source, tmp_path, "noise.kind=symmetric", "noise.rate=0.2")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["class_names"] == ["negative", "neutral", "positive"]
    assert summary["test_split"]["held_out_fraction"] == 0.2
    assert summary["reference_labels"].startswith("original")
    capsys.readouterr()

    # the same classes, other folder names and another order: mapped by name; the run's own data need not exist
    import shutil

    shutil.rmtree(source)
    target = tmp_path / "target"
    write_tree(target, {"c": "NEUTRAL", "a": "positive", "b": "Negative"}, per_class=5, seed=1,
               split_dirs=("train", "test"))
    assert main(["eval", str(result.run_dir), "--data", "folder", "--data.root", str(target),
                 f"data.cache_dir={tmp_path / 'cache'}", "data.workers=1"]) == 0
    printed = capsys.readouterr().out
    assert "scored against the labels of the other dataset's test split, classes matched by name" in printed
    report = json.loads((result.run_dir / "eval_folder_test_best.json").read_text())
    assert report["class_names"] == ["negative", "neutral", "positive"]
    assert report["dataset_classes"] == ["negative", "neutral", "positive"]
    assert report["num_samples"] == 15 and sum(map(sum, report["confusion"])) == 15
    assert [sum(row) for row in report["confusion"]] == [5, 5, 5]

    # a class the run never saw is refused, naming it
    wrong = tmp_path / "wrong"
    write_tree(wrong, {"a": "positive", "b": "negative", "x": "surprised"}, per_class=2, split_dirs=("train", "test"))
    assert main(["eval", str(result.run_dir), "--data", "folder", f"data.root={wrong}",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.workers=1"]) == 2
    assert "class(es) surprise that the run was not trained on" in capsys.readouterr().err

    # --split train says what it scores against, and scores the noisy training labels separately
    write_tree(source, SENTIMENT, per_class=12)  # the run's own data back, byte for byte
    assert main(["eval", str(result.run_dir), "--split", "train"]) == 0
    printed = capsys.readouterr().out
    assert "train split, scored against the dataset's own training labels (before any injected noise" in printed
    train_report = json.loads((result.run_dir / "eval_train_best.json").read_text())
    assert "accuracy_vs_training_labels" in train_report
    assert "against the run's training labels (noisy)" in printed
