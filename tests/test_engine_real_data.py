"""Runs on real-layout fixtures: skipped-item logs in the run directory, RAF-DB noise files resumed."""

from __future__ import annotations

import json

import numpy as np

import noisyfer
from noisyfer.config import config_from_args
from noisyfer.data.fixtures import write_rafdb


def _overrides(root, tmp_path, *extra):
    return ["data=rafdb", f"data.root={root}", "data.image_size=32", f"data.cache_dir={tmp_path / 'cache'}",
            "model.backbone=resnet_tiny", "train.batch_size=8", "train.epochs=1", f"out={tmp_path / 'runs'}",
            *extra]


def test_skipped_items_are_logged_in_the_run(tmp_path):
    root = tmp_path / "raf"
    write_rafdb(root, num_train=28, num_test=14, size=48)
    missing = sorted((root / "Image" / "aligned").glob("train_*"))[3]
    missing.unlink()
    result = noisyfer.train(config_from_args(None, _overrides(root, tmp_path, "data.on_bad=skip")))
    lines = (result.run_dir / "skipped_items.jsonl").read_text().splitlines()
    assert len(lines) == 1 and missing.name in lines[0]
    assert result.summary["data_skipped"] == 1


def test_rafdb_noise_file_trains_and_resumes(tmp_path):
    root = tmp_path / "raf"
    write_rafdb(root, num_train=28, num_test=14, size=48)
    label_lines = (root / "EmoLabel" / "list_patition_label.txt").read_text().splitlines()
    train_lines = [line for line in label_lines if line.startswith("train_")]
    # flip the first four training labels to the next class (1..7, RAF-DB's codes)
    noisy = [f"{n} {int(c) % 7 + 1}" if i < 4 else f"{n} {c}"
             for i, (n, c) in enumerate(line.split() for line in train_lines)]
    noise_file = tmp_path / "noise.txt"
    noise_file.write_text("\n".join(noisy) + "\n")
    result = noisyfer.train(config_from_args(None, _overrides(root, tmp_path, f"noise.file={noise_file}")))
    assert "noisefile" in result.run_dir.name
    meta = json.loads((result.run_dir / "train_labels.json").read_text())
    assert meta["kind"] == "file" and meta["realized_rate"] == np.float64(4 / 28)
    resumed = noisyfer.resume(result.run_dir, ["train.epochs=2"])
    assert resumed.summary["epochs_done"] == 2
