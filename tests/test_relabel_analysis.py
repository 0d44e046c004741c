"""Relabel-inconsistency analysis on a hand-made label history, and on a real run directory."""

from __future__ import annotations

import numpy as np
import pytest

import noisyfer
from noisyfer.analysis import (
    changes_per_epoch,
    flip_counts,
    label_history,
    relabel_accuracy,
    relabel_report,
    return_counts,
    returns_per_epoch,
)
from noisyfer.config import config_from_args
from noisyfer.engine.rundir import RunDirectory
from noisyfer.errors import DataError, UserError

# rows = given labels, then epochs 1..4; columns = samples
HISTORY = np.array([
    # s0 s1 s2 s3 s4 s5
    [0, 1, 3, 5, 2, 1],
    [0, 2, 4, 6, 2, 1],
    [0, 1, 4, 0, 3, 1],
    [0, 2, 4, 5, 3, 1],
    [0, 1, 4, 5, 2, 0],
])
# s0 never changes; s1 1-2-1-2-1: 4 changes, 3 returns; s2 3-4: 1 change; s3 5-6-0-5: 3 changes,
# 1 return (back to 5); s4 2-3-2: 2 changes, 1 return; s5 1-0 at the last epoch: 1 change.


def test_flip_and_return_counts_per_sample():
    assert flip_counts(HISTORY).tolist() == [0, 4, 1, 3, 2, 1]
    assert return_counts(HISTORY).tolist() == [0, 3, 0, 1, 1, 0]


def test_counts_per_epoch():
    # epoch 1: s1, s2, s3; epoch 2: s1, s3, s4; epoch 3: s1, s3; epoch 4: s1, s4, s5
    assert changes_per_epoch(HISTORY).tolist() == [3, 3, 2, 3]
    # returns: epoch 2: s1 (to 1); epoch 3: s1 (to 2), s3 (to 5); epoch 4: s1 (to 1), s4 (to 2)
    assert returns_per_epoch(HISTORY).tolist() == [0, 1, 2, 2]


def test_report_and_relabel_accuracy():
    true = np.array([0, 2, 4, 5, 2, 1])
    report = relabel_report(HISTORY, true_labels=true)
    assert report.relabeled == 5 and report.back_and_forth == 3
    assert report.total_changes == 11 and report.total_returns == 5
    assert report.flip_count_histogram == {0: 1, 1: 2, 2: 1, 3: 1, 4: 1}
    # first vs last row: s2 3->4 (wrong -> right), s5 1->0 (right -> wrong); s1 ends where it started
    a = report.accuracy
    assert a["relabeled"] == 2 and a["corrected"] == 1 and a["corrupted"] == 1 and a["wrong_to_wrong"] == 0
    assert a["label_accuracy_initial"] == pytest.approx(4 / 6) and a["label_accuracy_final"] == pytest.approx(4 / 6)
    assert a["relabel_precision"] == 0.5 and a["noisy_initial"] == 2 and a["noisy_recall"] == 0.5
    assert "back-and-forth" in report.format()


def test_relabel_accuracy_wrong_to_wrong():
    a = relabel_accuracy(np.array([1, 1]), np.array([2, 1]), np.array([0, 0]))
    assert a["wrong_to_wrong"] == 1 and a["relabel_precision"] == 0.0 and a["noisy_recall"] == 0.0


def test_bad_input():
    with pytest.raises(UserError, match="epochs, samples"):
        flip_counts(np.array([1, 2, 3]))
    with pytest.raises(UserError, match="integers"):
        flip_counts(np.zeros((2, 3)))


def _write_epochs(samples, rows, key="labels"):
    samples.mkdir(parents=True)
    for epoch, labels in rows:
        np.savez(samples / f"epoch_{epoch:03d}.npz", **{key: np.asarray(labels)})


def test_run_directory_errors(tmp_path):
    run = tmp_path / "gap"
    _write_epochs(run / "samples", [(1, [0, 1]), (3, [0, 1])])
    with pytest.raises(DataError, match=r"missing \[2\]"):
        relabel_report(run)
    run = tmp_path / "nolabels"
    _write_epochs(run / "samples", [(1, [0, 1])], key="clean_score")
    with pytest.raises(DataError, match="no 'labels' array"):
        relabel_report(run)
    with pytest.raises(DataError, match="no samples/ folder"):
        relabel_report(tmp_path / "empty")


def test_run_directory_without_given_labels(tmp_path):
    _write_epochs(tmp_path / "samples", [(1, [0, 1]), (2, [1, 1]), (3, [0, 1])])
    history, epochs = label_history(tmp_path)
    assert epochs == [1, 2, 3] and history.tolist() == [[0, 1], [1, 1], [0, 1]]
    assert relabel_report(tmp_path).back_and_forth == 1


def test_a_real_scn_run_agrees_with_the_method_counters(tiny_overrides):
    result = noisyfer.train(config_from_args(None, tiny_overrides + [
        "method=scn", "method.relabel_epoch=1", "method.margin2=0.05", "noise.kind=symmetric", "noise.rate=0.3",
        "train.epochs=2"]))
    history, epochs = label_history(result.run_dir)
    assert epochs == [0, 1, 2] and history.shape == (3, 448)
    report = relabel_report(result.run_dir)
    assert report.reference == "pre-noise labels of train_labels.csv" and report.accuracy is not None
    metrics = RunDirectory.existing(result.run_dir).read_metrics()
    # each sample is drawn at most once per epoch, so snapshot changes equal the method's relabel events
    assert [m["relabels_epoch"] for m in metrics] == report.changes_per_epoch
    assert metrics[-1]["relabel_returns_total"] == report.total_returns
    assert metrics[-1]["back_and_forth_samples"] == report.back_and_forth
    assert report.total_changes > 0
    truth = relabel_report(result.run_dir, true_labels="dataset")
    assert truth.reference == "true_label column of the training set"
    # the tiny split's annotated labels are its true labels, so both references agree
    assert truth.accuracy == report.accuracy
