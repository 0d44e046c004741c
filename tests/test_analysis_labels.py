"""Memorization, label-distribution fidelity, per-class accuracy, relabel targets: hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

import noisyfer
from noisyfer.analysis.fidelity import (
    kl_divergence,
    label_distribution_fidelity,
    run_label_distribution_closeness,
    valid_distributions,
)
from noisyfer.analysis.memorization import agreement, memorization_curves
from noisyfer.analysis.perclass import balanced_accuracy, normalized_confusion, per_class_accuracy
from noisyfer.analysis.relabel_targets import most_inconsistent, relabel_target_counts
from noisyfer.engine.metrics import RunningAgreement
from noisyfer.errors import UserError
from noisyfer.methods.label_distribution import compare_label_distributions
from noisyfer.noise import load_noisy_labels

from .conftest import make_tiny_split


def test_agreement_by_hand():
    pred = np.array([0, 1, 2, 2, 0, 1])
    given = np.array([0, 2, 2, 1, 1, 1])  # wrong at 1, 3, 4 (true below)
    true = np.array([0, 1, 2, 2, 0, 1])
    out = agreement(pred, given=given, true=true)
    assert out == {"train_acc_given": 3 / 6, "train_acc_true": 1.0, "noisy_memorized": 0.0, "noisy_corrected": 1.0}
    memorizer = agreement(given, given=given, true=true)  # predicting the wrong labels everywhere
    assert memorizer["noisy_memorized"] == 1.0 and memorizer["train_acc_true"] == 0.5


def test_agreement_matches_the_engine_counter():
    import torch

    rng = np.random.default_rng(1)
    given, true = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    logits = rng.normal(size=(50, 4))
    counter = RunningAgreement(given=torch.as_tensor(given), true=torch.as_tensor(true))
    counter.update(torch.as_tensor(logits), torch.arange(50))
    engine = counter.compute()
    ours = agreement(logits.argmax(1), given=given, true=true)
    assert ours == pytest.approx(engine)


def test_memorization_curves_mark_missing_values_nan():
    records = [{"epoch": 1, "test_accuracy": 0.5, "train_acc_given": 0.4},
               {"epoch": 2, "test_accuracy": 0.6, "train_acc_given": 0.5, "noisy_memorized": 0.1}]
    curves = memorization_curves(records)
    assert curves["epoch"].tolist() == [1, 2]
    assert np.isnan(curves["noisy_memorized"][0]) and curves["noisy_memorized"][1] == 0.1
    assert np.isnan(curves["train_acc_true"]).all()


def test_kl_and_fidelity_by_hand():
    truth = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    learned = np.array([[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]])  # second row: never seen (not a distribution)
    assert valid_distributions(learned).tolist() == [True, False]
    # KL = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
    expected = 0.5 * np.log(2) + 0.5 * np.log(2 / 3)
    assert kl_divergence(truth[:1], learned[:1])[0] == pytest.approx(expected, abs=1e-6)
    out = label_distribution_fidelity(learned, truth)
    assert out["num_valid"] == 1 and out["kl_mean"] == pytest.approx(expected, abs=1e-6)
    assert out["tv_mean"] == pytest.approx(0.25) and out["top1_agreement"] == 0.0  # argmax 0 vs 1
    assert out["kl_uniform_mean"] == pytest.approx(np.log(3) - np.log(2))  # 0.5 ln(1.5) * 2
    assert kl_divergence(truth, truth).tolist() == pytest.approx([0.0, 0.0], abs=1e-7)  # eps clipping
    with pytest.raises(UserError, match="differ in shape"):
        label_distribution_fidelity(np.ones((2, 2)) / 2, truth)


def test_run_label_distribution_closeness_pairs_the_record_with_the_truth_and_the_given_labels(tiny_overrides):
    noisy = ["noise.kind=symmetric", "noise.rate=0.4", "train.epochs=1"]
    run = noisyfer.train(noisyfer.config_from_args(None, [*tiny_overrides, "method=elr", *noisy])).run_dir
    with np.load(run / "samples" / "epoch_001.npz") as record:
        learned = record["label_dist"]
    truth = make_tiny_split(448, seed=1)  # the training split of tiny_data_dir
    given = load_noisy_labels(run / "train_labels.csv").labels
    assert (given != truth.labels).sum() > 100  # the noise is what kl_one_hot measures
    closeness = run_label_distribution_closeness(run)
    assert closeness == compare_label_distributions(learned, truth.columns["label_dist"], given)
    assert closeness["kl_one_hot"] > compare_label_distributions(learned, truth.columns["label_dist"], truth.labels)["kl_one_hot"]
    ce_run = noisyfer.train(noisyfer.config_from_args(None, [*tiny_overrides, "method=ce", *noisy, "name=ce"])).run_dir
    assert run_label_distribution_closeness(ce_run) == {}  # ce keeps no label distributions


def test_per_class_and_balanced_accuracy():
    m = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    assert per_class_accuracy(m) == [0.75, 0.5, None]  # an absent class has no accuracy, not 0
    assert balanced_accuracy(m) == pytest.approx(0.625)
    norm = normalized_confusion(m)
    assert norm[0].tolist() == [0.75, 0.25, 0.0] and np.isnan(norm[2]).all()


def test_relabel_target_counts_and_most_inconsistent():
    history = np.array([[0, 1, 2, 0],
                        [1, 1, 0, 0],
                        [0, 1, 2, 2],
                        [1, 0, 2, 0]])
    # s0: 0->1->0->1: to 1 twice, to 0 once; s1: 1->0 once; s2: 2->0->2: to 0 once, to 2 once; s3: 0->2->0
    counts = relabel_target_counts(history, num_classes=3)
    assert counts.tolist() == [[1, 2, 0], [1, 0, 0], [1, 0, 1], [1, 0, 1]]
    # returns: s0 two (to 0, then to 1; 3 changes), s2 and s3 one each (2 changes, lower index first), s1 none
    assert most_inconsistent(history, 3).tolist() == [0, 2, 3]
    assert most_inconsistent(np.zeros((3, 4), int), 2).tolist() == []  # nothing changed: nothing to show
