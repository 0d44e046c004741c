"""Issue 17: what a run leaves (TensorBoard per-step points, hparams and confusion images; the terminal
table's labels; no directory after a refused run) and sweep --dry-run's list of refused points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noisyfer.cli.main import main
from noisyfer.engine.summary import metric_label


def test_tensorboard_steps_hparams_confusion_and_terminal_labels(tiny_overrides, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(["train", *[o for o in tiny_overrides if not o.startswith("out=")], "train.log_every=5",
                 "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    run = Path(out.strip().splitlines()[-1])
    assert run.parent == tmp_path / "runs"
    assert "test accuracy, mean of the last 2 epochs (NCCTFER convention)" in out
    assert "training predictions = true labels, last epoch" in out  # the tiny data carries true_label

    steps = EventAccumulator(str(run / "tb" / "steps")).Reload()
    loss = steps.Scalars("step/train_loss")
    # 448 samples / batch 32 = 14 steps an epoch: points every 5 steps and at each epoch's end
    assert [e.step for e in loss] == [5, 10, 14, 19, 24, 28]
    assert [e.step for e in steps.Scalars("step/lr")] == [5, 10, 14, 19, 24, 28]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epoch_means = [m["train_loss"] for m in metrics]
    # the epoch's mean loss is the step-weighted mean of its points (5, 5 and 4 steps)
    for epoch, mean in enumerate(epoch_means):
        points = [e.value for e in loss[3 * epoch:3 * epoch + 3]]
        assert mean == pytest.approx((5 * points[0] + 5 * points[1] + 4 * points[2]) / 14, rel=1e-4)
    epochs = EventAccumulator(str(run / "tb"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in epochs.Images("test/confusion")] == [1, 2]
    assert epochs.PluginTagToContent("hparams")  # the HParams plugin's session data

    # suspects --top N lists N and says how many faces its grid drew
    assert main(["suspects", str(run), "--top", "100", "--out", str(tmp_path / "s100.csv")]) == 0
    printed = capsys.readouterr().out
    assert "(100 samples)" in printed and "s100.png (100 faces)" in printed
    assert len((tmp_path / "s100.csv").read_text().splitlines()) == 101
    assert main(["suspects", str(run), "--top", "300", "--out", str(tmp_path / "s300.csv")]) == 0
    assert "s300.png (200 faces: the first 200 of 300)" in capsys.readouterr().out


def test_metric_labels_follow_the_run():
    assert metric_label("accuracy_last5", {"epochs_done": 3}) == "test accuracy, mean of the last 3 epochs (NCCTFER convention)"
    assert metric_label("accuracy_last5", {"epochs_done": 1}).endswith("last 1 epoch (NCCTFER convention)")
    assert metric_label("balanced_accuracy_last5", {"epochs_done": 40}) == "balanced accuracy, mean of the last 5 epochs"
    label = metric_label("train_acc_true_last", {"reference_labels": "original (before the injected noise)"})
    assert "true" not in label and "original (before the injected noise) labels" in label


def test_a_run_refused_for_a_user_error_leaves_no_directory(tiny_overrides, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", *tiny_overrides, "model.backbone=resnet_tinny"]) == 2
    assert "unknown backbone 'resnet_tinny' (did you mean 'resnet_tiny'?)" in capsys.readouterr().err
    assert not out.exists()


def test_sweep_dry_run_resolves_every_point_and_lists_the_refused(tiny_overrides, tmp_path, capsys):
    base = [o for o in tiny_overrides if not o.startswith("out=")]
    assert main(["sweep", *base, "noise.rate=0.2,0.4", "seed=0,1", "--out", str(tmp_path / "sw"), "--dry-run"]) == 2
    captured = capsys.readouterr()
    refused = [line for line in captured.out.splitlines() if line.strip().startswith("refuse ")]
    assert len(refused) == 4 and all("noise.kind=none" in line for line in refused)
    assert "4 of 4 points would be refused" in captured.err
    assert main(["sweep", *base, "noise.kind=symmetric", "noise.rate=0.2,0.4", "seed=0,1", "--out",
                 str(tmp_path / "sw"), "--dry-run"]) == 0
    assert "4 to start" in capsys.readouterr().out
    assert not (tmp_path / "sw").exists()
