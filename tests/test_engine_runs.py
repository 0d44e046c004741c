"""Runs through the engine: run directory contents, determinism, kill + resume, divergence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import noisyfer
from noisyfer.config import config_from_args
from noisyfer.errors import TrainingDiverged
from noisyfer.methods.base import Method, StepOutput
from noisyfer.registry import METHODS, register_method
from tests.conftest import kill_once_written


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time_epoch_s")
    return rows


def test_run_directory_contents_and_summary(tiny_overrides):
    result = noisyfer.train(config_from_args(None, tiny_overrides + ["noise.kind=symmetric", "noise.rate=0.3",
                                                                     "train.epochs=3"]))
    run = result.run_dir
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "train_labels.csv", "train_labels.json",
                 "best_model.pt"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_002.pt", "epoch_003.pt"]
    assert any((run / "tb").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    rows = _metrics(run)
    accs = [r["test_accuracy"] for r in rows]
    assert summary["accuracy_last"] == accs[-1]
    assert summary["accuracy_best"] == max(accs)
    assert summary["accuracy_last5"] == pytest.approx(sum(accs) / 3)
    assert len(summary["confusion_last"]) == 7 and summary["class_names"][0] == "neutral"
    assert sum(map(sum, summary["confusion_last"])) == 140
    labels = json.loads((run / "train_labels.json").read_text())
    assert labels["kind"] == "symmetric" and abs(labels["realized_rate"] - 0.3) < 0.1
    # memorization is measured against the tiny set's true labels
    assert {"train_acc_given", "train_acc_true", "noisy_memorized", "noisy_corrected"} <= rows[-1].keys()


def test_same_seed_same_numbers_and_other_seed_differs(tiny_overrides):
    runs = [noisyfer.train(config_from_args(None, tiny_overrides + [f"seed={s}", f"name=s{s}-{i}"]))
            for i, s in enumerate((0, 0, 1))]
    a, b, c = (_metrics(r.run_dir) for r in runs)
    assert a == b
    assert a != c


def test_killed_run_resumes_to_identical_numbers(tiny_overrides, tmp_path):
    overrides = tiny_overrides + ["train.epochs=4", "noise.kind=symmetric", "noise.rate=0.3"]
    reference = noisyfer.train(config_from_args(None, overrides + ["name=reference"]))
    cmd = [sys.executable, "-m", "noisyfer.cli.main", "train", *overrides, "name=killed"]
    run_dir = Path(next(o.split("=", 1)[1] for o in overrides if o.startswith("out="))) / "killed"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_once_written(proc, run_dir / "checkpoints" / "epoch_002.pt", timeout=120, kill=os.kill)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "running" and summary["epochs_done"] < 4  # really interrupted
    resumed = noisyfer.resume(run_dir)
    assert _metrics(resumed.run_dir) == _metrics(reference.run_dir)
    assert resumed.summary["accuracy_last"] == reference.summary["accuracy_last"]


def test_resume_refuses_config_changes(tiny_overrides):
    result = noisyfer.train(config_from_args(None, tiny_overrides + ["train.epochs=1"]))
    with pytest.raises(noisyfer.errors.UserError, match="only train.epochs, device may change"):
        noisyfer.resume(result.run_dir, ["train.lr=0.1"])
    extended = noisyfer.resume(result.run_dir, ["train.epochs=2"])
    assert extended.summary["epochs_done"] == 2


@dataclass
class _ExplodeOptions:
    at_step: int = 3


class _Explode(Method):
    """Test method whose loss becomes NaN after a few steps."""

    def __init__(self, *, options, **common):
        super().__init__(options=options, **common)
        self.fc = torch.nn.Linear(self.backbone.num_features, self.num_classes)
        self.steps = 0

    def forward(self, images):
        return self.fc(self.backbone(images).features)

    def training_step(self, batch, *, epoch):
        self.steps += 1
        logits = self(self.augment.train(batch.images))
        loss = torch.nn.functional.cross_entropy(logits, batch.labels)
        return StepOutput(loss=loss * float("nan") if self.steps >= self.options.at_step else loss)


def test_nan_loss_stops_the_run_with_a_clear_message(tiny_overrides):
    register_method("_test_explode", options=_ExplodeOptions)(_Explode)
    try:
        with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 1, step 3\.\.3 of 14"):
            noisyfer.train(config_from_args(None, tiny_overrides + ["method=_test_explode"]))
    finally:
        METHODS._entries.pop("_test_explode")
