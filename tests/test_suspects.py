"""Suspected mislabels: the ranking on known probabilities, and ``noisyfer suspects`` on a noisy run."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import noisyfer
from noisyfer.analysis.features import extract, load_model
from noisyfer.analysis.rundata import RunData
from noisyfer.analysis.suspects import precision_at, rank_suspects, suspicion
from noisyfer.cli.main import main
from noisyfer.config import config_from_args
from noisyfer.errors import UserError
from noisyfer.noise import load_noisy_labels


def test_suspicion_and_ranking_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.05, 0.9, 0.05]])
    score, suggested = suspicion(probs, given=np.array([0, 0, 1, 0]))
    assert score.tolist() == pytest.approx([0.3, 0.9, 0.5, 0.95])
    assert suggested.tolist() == [1, 2, 2, 1]  # the most probable class other than the given one
    assert rank_suspects(score, top=3).tolist() == [3, 1, 2]
    assert rank_suspects(np.array([0.5, 0.5, 0.7]), top=3).tolist() == [2, 0, 1]  # ties: lower index first
    assert precision_at(np.array([3, 1]), np.array([False, True, False, True])) == 1.0
    with pytest.raises(UserError, match="given labels must lie"):
        suspicion(probs, given=np.array([0, 0, 1, 3]))


@pytest.fixture(scope="module")
def noisy_run(tiny_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("suspects")
    result = noisyfer.train(config_from_args(None, [
        "data=noisyfer", f"data.root={tiny_data_dir}", "model.backbone=resnet_tiny", "train.batch_size=32",
        "train.epochs=2", "train.lr=0.003", f"out={out}", "seed=0", "method=ce", "noise.kind=symmetric",
        "noise.rate=0.3"]))
    return result.run_dir


def test_suspects_command_writes_csv_grid_and_precision(noisy_run, tmp_path, capsys):
    out = tmp_path / "cleaning" / "suspects.csv"
    assert main(["suspects", str(noisy_run), "--top", "20", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20 and list(rows[0])[:8] == ["rank", "index", "path", "given_label", "given_class",
                                                     "suggested_label", "suggested_class", "score"]
    labels = load_noisy_labels(noisy_run / "train_labels.csv")
    index = np.array([int(r["index"]) for r in rows])
    assert (np.array([int(r["given_label"]) for r in rows]) == labels.labels[index]).all()
    # the tiny split's given labels before noise are its true labels
    mislabeled = labels.labels[index] != labels.original[index]
    assert [r["mislabeled"] == "True" for r in rows] == mislabeled.tolist()
    # scores are 1 - p(given label) under the best weights, recomputed independently and sorted
    model = load_model(noisy_run, device="cpu")
    probs = torch.from_numpy(extract(model, RunData(noisy_run).train.images)[1]).softmax(1).numpy()
    expected = 1 - probs[np.arange(len(probs)), labels.labels]
    assert [float(r["score"]) for r in rows] == pytest.approx(np.sort(expected)[::-1][:20], abs=1e-5)
    precision = mislabeled.mean()
    assert f"precision against the true flips (true_label column of the training set): {precision:.4f}" in printed
    assert precision > (labels.labels != labels.original).mean()  # better than picking at random
    from PIL import Image

    assert Image.open(out.with_suffix(".png")).size[0] > 500


def test_suspects_errors(noisy_run, tmp_path):
    assert main(["suspects", str(noisy_run), "--top", "0"]) == 2
    assert main(["suspects", str(noisy_run), "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["suspects", str(tmp_path)]) == 2
