"""Finding wrong labels: folds, out-of-fold probabilities, cleanlab's estimates, scores, method signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisyfer.analysis.label_issues import estimate_label_issues, load_noise_rate_estimate
from noisyfer.analysis.scores import SCORES, rank_suspects, score_samples
from noisyfer.config import TrainConfig
from noisyfer.data.classes import BASIC7
from noisyfer.data.folds import stratified_folds
from noisyfer.engine.loader import TensorLoader
from noisyfer.engine.optim import build_optimizers
from noisyfer.errors import UserError
from noisyfer.noise import apply_noise
from noisyfer.registry import METHODS
from tests.conftest import make_tiny_split
from tests.test_methods_contract import _method


# -- folds ---------------------------------------------------------------------------------------
def test_stratified_folds_partition_and_balance():
    labels = np.repeat(np.arange(5), [40, 17, 9, 23, 11])  # 100 samples, uneven classes
    folds = stratified_folds(labels, k=4, seed=3)
    assert folds.shape == labels.shape and set(folds.tolist()) == {0, 1, 2, 3}
    assert np.bincount(folds).tolist() == [25, 25, 25, 25]
    for c in range(5):  # each class spread over the folds within one sample
        counts = np.bincount(folds[labels == c], minlength=4)
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(folds, stratified_folds(labels, k=4, seed=3))  # seeded
    assert not np.array_equal(folds, stratified_folds(labels, k=4, seed=4))
    with pytest.raises(UserError, match="at least 2 folds"):
        stratified_folds(labels, k=1, seed=0)


def test_loader_subset_draws_only_its_samples():
    data = make_tiny_split(50)
    subset = np.flatnonzero(stratified_folds(data.labels, k=5, seed=0) != 2)
    loader = TensorLoader(data, batch_size=8, device=torch.device("cpu"), subset=subset)
    for sampler in ("random", "balanced"):
        drawn = torch.cat([b.indices for b in loader.train_batches(seed=0, epoch=1, sampler=sampler,
                                                                     drop_last=False)]).numpy()
        assert set(drawn.tolist()) <= set(subset.tolist())
        assert drawn.size == subset.size
    assert loader.num_batches(drop_last=True) == subset.size // 8
    assert torch.cat([b.indices for b in loader.eval_batches()]).numel() == 50  # evaluation sees every sample


def test_crossval_scores_every_sample_once_by_a_model_that_did_not_train_on_it(tmp_path):
    from noisyfer.analysis.rundata import RunData
    from noisyfer.data.format import save_dataset
    from noisyfer.sweep.crossval import collect_oof, run_crossval

    save_dataset({"train": make_tiny_split(64, seed=1), "test": make_tiny_split(21, seed=2)}, tmp_path / "data")
    items = ["method=scn", "data=noisyfer", f"data.root={tmp_path / 'data'}", "model.backbone=resnet_tiny", "data.image_size=32", "train.epochs=1", "train.batch_size=16",
             "train.drop_last=false", "noise.kind=symmetric", "noise.rate=0.3", "seed=0"]
    counts = run_crossval(items, tmp_path / "cv", k=3, fold_seed=5, echo=lambda _: None)
    assert counts["finished"] == 3
    oof = collect_oof(tmp_path / "cv")
    n = oof.given.size
    assert np.bincount(oof.fold).tolist() == np.bincount(stratified_folds(oof.given, k=3, seed=5)).tolist()
    assert np.allclose(oof.probs.sum(1), 1.0, atol=1e-5)
    for f, run_dir in enumerate(oof.runs):
        held = np.load(run_dir / "heldout_probs.npz")["indices"]
        assert np.array_equal(held, np.flatnonzero(oof.fold == f))
        # SCN records each sample's attention when it is drawn (NaN before): with drop_last off, the
        # fold run drew exactly the samples of the other folds
        attention = RunData(run_dir).sample_record()["clean_score"]
        assert np.array_equal(np.flatnonzero(np.isnan(attention)), held)
    assert sum(np.load(r / "heldout_probs.npz")["indices"].size for r in oof.runs) == n
    # again: every fold is finished, nothing retrains
    assert run_crossval(items, tmp_path / "cv", k=3, fold_seed=5, echo=lambda _: None)["skipped"] == 3


def test_crossval_refuses_grids_and_its_own_keys(tmp_path):
    from noisyfer.sweep.crossval import collect_oof, crossval_spec

    with pytest.raises(UserError, match="one value each"):
        crossval_spec(["method=ce,scn"], k=3)
    with pytest.raises(UserError, match="data.fold"):
        crossval_spec(["data.fold=1"], k=3)
    with pytest.raises(UserError, match="not a cross-validation directory"):
        collect_oof(tmp_path)


# -- cleanlab ----------------------------------------------------------------------------------------
def test_cleanlab_finds_the_hand_made_issues():
    # 3 classes of 100; the model is sure of every true class; samples 0-19 (class 0) are labelled 2
    # and 100-109 (class 1) are labelled 0: 30 known issues
    true = np.repeat(np.arange(3), 100)
    given = true.copy()
    given[:20] = 2
    given[100:110] = 0
    probs = np.full((300, 3), 0.05)
    probs[np.arange(300), true] = 0.9
    found = estimate_label_issues(labels=given, probs=probs)
    assert found.num_issues == 30
    assert np.array_equal(np.flatnonzero(found.issues), np.r_[0:20, 100:110])
    assert found.noise_rate == pytest.approx(0.1)
    assert found.suggested[:20].tolist() == [0] * 20 and found.suggested[100:110].tolist() == [1] * 10
    # rows = true class: 20 of class 0 were given 2, 10 of class 1 were given 0
    assert found.transition[0].round(2).tolist() == [0.8, 0.0, 0.2]
    assert found.transition[1].round(2).tolist() == [0.1, 0.9, 0.0]
    assert found.transition[2].round(2).tolist() == [0.0, 0.0, 1.0]
    assert np.allclose(found.transition.sum(1), 1.0) and found.joint.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kind,rate", [("symmetric", 0.2), ("symmetric", 0.4), ("asymmetric", 0.3)])
def test_noise_rate_estimate_on_injected_noise(kind, rate):
    """A model with 85 %-accurate, noisy out-of-sample probabilities: the estimate is within 3 points."""
    rng = np.random.default_rng(0)
    n = 4000
    true = rng.integers(0, 7, n)
    noisy = apply_noise(true, class_names=BASIC7, kind=kind, rate=rate, seed=1)
    logits = rng.normal(0.0, 1.0, (n, 7))
    logits[np.arange(n), true] += 2.8
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    found = estimate_label_issues(labels=noisy.labels, probs=probs)
    assert abs(found.noise_rate - noisy.realized_rate) < 0.03
    assert abs(found.num_issues - noisy.flipped.sum()) < 0.03 * n


def test_estimates_refuse_bad_probabilities():
    given = np.array([0, 1, 2, 0])
    with pytest.raises(UserError, match=r"shape \(4, C\)"):
        estimate_label_issues(labels=given, probs=np.full((3, 3), 1 / 3))
    with pytest.raises(UserError, match="row 1 sums to"):
        estimate_label_issues(labels=given, probs=np.array([[1, 0, 0], [0.5, 0.6, 0], [0, 0, 1], [1, 0, 0.0]]))
    with pytest.raises(UserError, match=r"class\(es\) \[2\]"):
        estimate_label_issues(labels=np.array([0, 1, 1, 0]), probs=np.full((4, 3), 1 / 3))


def test_noise_rate_estimate_file_must_match_the_labels(tmp_path):
    import json

    from noisyfer.noise import labels_sha256

    labels = np.array([0, 1, 2, 1])
    path = tmp_path / "suspects.json"
    path.write_text(json.dumps({"estimated_noise_rate": 0.25, "given_labels_sha256": labels_sha256(labels)}))
    assert load_noise_rate_estimate(path, labels=labels)[0] == 0.25
    with pytest.raises(UserError, match="other training labels"):
        load_noise_rate_estimate(path, labels=np.array([0, 1, 2, 2]))
    with pytest.raises(UserError, match="not found"):
        load_noise_rate_estimate(tmp_path / "none.json", labels=labels)


# -- scores --------------------------------------------------------------------------------------
def test_scores_agree_on_direction():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    given = np.array([0, 0, 2])  # sample 1 is the suspicious one
    for kind in ("self_confidence", "margin"):
        assert rank_suspects(score_samples(kind, probs=probs, given=given), top=1).tolist() == [1]
    assert score_samples("margin", probs=probs, given=given).tolist() == pytest.approx([-0.7, 0.5, -0.1])
    clean = np.array([0.9, 0.1, np.nan])  # a method's clean_score: low = suspicious, NaN = never seen
    assert rank_suspects(score_samples("method", clean_score=clean), top=3).tolist() == [1, 0, 2]
    assert SCORES == ("self_confidence", "margin", "method")
    with pytest.raises(UserError, match="records no per-sample signal"):
        score_samples("method", probs=probs, given=given)


# -- every method's own signal -----------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_records_its_signal(name):
    cls = METHODS.get(name).obj
    data = make_tiny_split(64)
    method, loader = _method(name, data)
    optimizers = build_optimizers(method.param_groups(), TrainConfig(lr=1e-3, weight_decay=0.0))
    method.train()
    method.on_epoch_start(1)
    drawn = []
    for batch in loader.train_batches(seed=0, epoch=1, drop_last=False):
        for opt in optimizers:
            opt.zero_grad()
        out = method.training_step(batch, epoch=1)
        if out.loss is not None:
            out.loss.backward()
            for opt in optimizers:
                opt.step()
            drawn.append(batch.indices)
    record = method.epoch_record()
    if cls.signal is None:  # ce, eac: their papers define no per-sample signal
        assert "clean_score" not in record
        return
    assert isinstance(cls.signal, str) and cls.signal
    score = record["clean_score"].detach().float().cpu().numpy()
    assert score.shape == (len(data),)
    seen = torch.cat(drawn).unique().numpy()
    assert np.isfinite(score[seen]).all()
    assert np.unique(score[seen].round(6)).size > 1, "the signal does not vary between samples"


def test_fold_keys_only_in_fold_runs_configs():
    """A run without folds writes the configuration it always did (earlier sweeps still resume)."""
    from noisyfer.config import config_from_args

    assert not {"folds", "fold", "fold_seed"} & set(config_from_args(None, ["method=ce"]).to_dict()["data"])
    data = config_from_args(None, ["method=ce", "data.folds=3", "data.fold=2"]).to_dict()["data"]
    assert (data["folds"], data["fold"], data["fold_seed"]) == (3, 2, 0)
    for bad, message in ((["data.folds=3"], "needs the held-out fold"), (["data.folds=3", "data.fold=3"], "0..2"),
                         (["data.fold=0"], "at least 2"), (["data.folds=1", "data.fold=0"], "at least 2")):
        with pytest.raises(UserError, match=message):
            config_from_args(None, ["method=ce", *bad])
