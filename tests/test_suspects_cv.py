"""Find, clean, retrain on a user's CSV dataset: ``noisyfer suspects --cv``, ``--probs``, ``--clean-out``,
and SMEC's ``noise_level=auto`` from the estimate."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import noisyfer
from noisyfer.analysis.rundata import RunData
from noisyfer.cli.main import main
from noisyfer.config import config_from_args
from noisyfer.data.fixtures import write_csv_list
from noisyfer.data.format import load_dataset
from noisyfer.errors import UserError
from noisyfer.methods.smec import consistency_weight_for_noise
from noisyfer.noise import labels_sha256, load_noisy_labels

TRAIN = ["model.backbone=resnet_tiny", "data.image_size=32", "train.epochs=1", "train.batch_size=16",
         "train.drop_last=false", "seed=0"]


@pytest.fixture(scope="module")
def cv(tmp_path_factory):
    """2-fold cross-validation of ``ce`` on a CSV dataset (no truth known), run through the CLI."""
    root = tmp_path_factory.mktemp("suspects_cv")
    write_csv_list(root / "lists", num_train=42, num_test=14, size=40, seed=3)
    data = ["data=csv", f"data.root={root / 'lists'}", f"data.cache_dir={root / 'cache'}"]
    code = main(["suspects", "--cv", "2", "method=ce", *data, *TRAIN, "--cv-dir", str(root / "cv"),
                 "--clean-out", str(root / "clean")])
    return root, data, code


def test_cv_writes_suspects_estimates_and_a_cleaned_dataset(cv, capsys):
    root, data, code = cv
    assert code == 0
    summary = json.loads((root / "cv" / "suspects.json").read_text())
    with (root / "cv" / "suspects.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary["estimated_num_issues"]  # --top defaults to cleanlab's estimate
    assert "mislabeled" not in (rows[0] if rows else {"x": 1})  # a user's dataset: truth unknown
    assert 0.0 <= summary["estimated_noise_rate"] < 1.0
    assert np.allclose(np.sum(summary["transition"], axis=1), 1.0, atol=1e-5)
    probs = np.load(root / "cv" / "oof_probs.npy")
    assert probs.shape == (42, 7) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    cleaned = load_dataset(root / "clean")
    removed = {int(r["index"]) for r in rows}
    assert len(cleaned["train"]) == 42 - len(removed) and len(cleaned["test"]) == 14
    given = RunData(root / "cv" / "runs" / "data.fold-0").given_labels
    kept = np.setdiff1d(np.arange(42), sorted(removed))
    assert np.array_equal(cleaned["train"].labels, given[kept])
    paths = [r["path"] for r in rows]
    assert not set(paths) & set(cleaned["train"].columns["path"].tolist())  # the suspects' files are gone
    # retrain on it: the third command of find, clean, retrain
    result = noisyfer.train(config_from_args(None, ["method=ce", "data=noisyfer", f"data.root={root / 'clean'}",
                                                    "noise.kind=none", f"out={root / 'runs'}", *TRAIN]))
    assert result.summary["status"] == "finished"


def test_probs_from_an_outside_model_and_its_errors(cv, capsys):
    root, _, _ = cv
    given = RunData(root / "cv" / "runs" / "data.fold-0").given_labels
    probs = np.full((42, 7), 0.02)
    probs[np.arange(42), given] = 0.88
    probs[:5] = 0.02
    probs[np.arange(5), (given[:5] + 1) % 7] = 0.88  # the outside model disagrees with 5 labels
    good = root / "outside.npy"
    np.save(good, probs)
    out = root / "outside" / "suspects.csv"
    assert main(["suspects", str(root / "cv"), "--probs", str(good), "--out", str(out), "--clean-out",
                 str(root / "relabelled"), "--clean", "relabel"]) == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["index"]) for r in rows) == [0, 1, 2, 3, 4]
    assert [int(r["suggested_label"]) for r in sorted(rows, key=lambda r: int(r["index"]))] == \
        ((given[:5] + 1) % 7).tolist()
    # the relabel noise file trains on the original data
    noise = load_noisy_labels(root / "relabelled" / "relabel.csv")
    assert np.array_equal(noise.labels[:5], (given[:5] + 1) % 7) and np.array_equal(noise.labels[5:], given[5:])
    capsys.readouterr()
    np.save(root / "short.npy", probs[:40])
    np.save(root / "bad.npy", probs * 2)
    (root / "probs.txt").write_text("0.5")
    for path, message in ((root / "short.npy", "has shape (40, 7); expected (42, C)"),
                          (root / "bad.npy", "sums to 2.0000, not 1"),
                          (root / "probs.txt", "expected a .npy file"),
                          (root / "none.npy", "file not found")):
        assert main(["suspects", str(root / "cv"), "--probs", str(path), "--out", str(root / "x.csv")]) == 2
        assert message in capsys.readouterr().err


def test_smec_noise_level_auto_uses_and_records_the_estimate(cv):
    root, data, _ = cv
    summary = json.loads((root / "cv" / "suspects.json").read_text())
    labels = RunData(root / "cv" / "runs" / "data.fold-0").given_labels
    assert summary["given_labels_sha256"] == labels_sha256(labels)
    result = noisyfer.train(config_from_args(None, [
        "method=smec", "method.noise_level=auto", f"method.noise_estimate={root / 'cv' / 'suspects.json'}",
        *data, *TRAIN, f"out={root / 'smec'}"]))
    used = result.summary["method_resolved"]
    assert used["noise_level"] == pytest.approx(summary["estimated_noise_rate"], abs=1e-6)
    assert used["consistency_weight"] == consistency_weight_for_noise(summary["estimated_noise_rate"])
    assert str(root / "cv" / "suspects.json") in used["noise_level_source"]
    with pytest.raises(UserError, match="noise_level=auto needs noise_estimate"):
        config_from_args(None, ["method=smec", "method.noise_level=auto"])
