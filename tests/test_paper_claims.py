"""``benchmarks/paper_claims.py``: every sweep it runs resolves, and its cells are what the rows say."""

from __future__ import annotations

import json

import pytest
import yaml

from noisyfer.sweep.spec import SweepSpec

from .conftest import ROOT, benchmark_script


@pytest.fixture(scope="module")
def claims():
    with benchmark_script("paper_claims") as module:
        yield module


def test_every_sweep_resolves_with_the_option_it_changes(claims, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the sweep files name the shipped configs relative to the checkout
    commands = claims.sweep_commands()
    assert len(commands) == len(claims.SWEEPS) + len(claims.ABLATIONS) + len(claims.EXTRA)
    for out, arguments in commands.items():
        points = SweepSpec.from_args(arguments).resolved(runs_dir=tmp_path / "runs")
        assert points, out
        if out.startswith("sweeps/ablation/"):
            method, overrides = claims.ABLATIONS[out.rsplit("/", 1)[1]]
            assert sorted({cfg["method"]["name"] for _, cfg in points}) == sorted(method.split(","))
            assert len(points) == 3 * len(method.split(","))  # three seeds of each method
            assert {cfg["noise"]["rate"] for _, cfg in points} == {0.4}
            for _, cfg in points:  # the changed option reached the run's configuration
                for item in overrides:
                    key, value = item.split("=", 1)
                    section, name = key.split(".", 1)
                    stored = cfg[section][name]
                    assert str(stored).lower().replace("'", "").replace(" ", "") == value.lower() or \
                        float(stored) == float(value), (out, key, stored)


def test_cells_are_mean_and_sample_std_over_the_seeds(claims):
    rows = [{"accuracy_last": 0.60, "accuracy_best": 0.70}, {"accuracy_last": 0.64, "accuracy_best": 0.72},
            {"accuracy_last": 0.62, "accuracy_best": 0.74}]
    assert claims.cell(rows) == "62.0 ± 2.0 / 72.0 ± 2.0"
    assert claims.cell(rows[:2]) == "62.0 ± 2.8 / 71.0 ± 1.4 (n=2)"
    assert claims.cell(rows[:1]) == "60.0 / 70.0 (n=1)"
    assert claims.cell([]) == "-"


def test_rows_are_selected_by_method_and_noise_rate(claims):
    rows = [{"method": "ce", "noise_rate": 0.4}, {"method": "ce", "noise_rate": 0.2},
            {"method": "lrn", "noise_rate": 0.4}]
    assert claims.select(rows, method="ce", noise_rate=0.4) == rows[:1]
    assert claims.select(rows, noise_rate=0.4) == [rows[0], rows[2]]


def test_archive_round_trip_keeps_every_field(claims, tmp_path):
    record = {"sweep": "sweeps/ablation/lrn_cld_off", "name": "seed-1", "method": "lrn", "noise_kind": "symmetric",
              "noise_rate": 0.4, "seed": 1.0, "accuracy_last": 0.6242857142857143, "accuracy_best": 0.73,
              "balanced_accuracy_last": 0.5, "balanced_accuracy_best": 0.6, "noisy_memorized_last": 0.44,
              "relabel_changes": 1798.0, "relabel_returns": None, "relabel_precision": 0.52, "kl_learned": None,
              "kl_one_hot": None, "accuracy_first": 0.7, "accuracy_dip": 0.5, "dip_epoch": 2.0,
              "top_class_share_dip": 0.84, "consistency_over_ce_first": None}
    assert set(record) == set(claims.RECORD_FIELDS)
    path = tmp_path / "archive.csv"
    claims.write_archive([record], path)
    assert claims.read_archive(path) == [record]
    assert claims.cell(claims.read_archive(path)) == "62.4 / 73.0 (n=1)"


def test_an_archived_run_counts_once_whatever_its_run_name(claims, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no sweep directories here: every record comes from the archive
    record = {key: None for key in claims.RECORD_FIELDS}
    record.update(sweep="sweeps/sim_memorization_pop2", name="noise.rate-0.4__method-ce", method="ce",
                  noise_kind="symmetric", noise_rate=0.4, seed=0.0, accuracy_last=0.58, accuracy_best=0.73)
    renamed = {**record, "name": "noise.rate-0.4__method-ce__seed-0"}
    path = tmp_path / "archive.csv"
    claims.write_archive([record, renamed], path)
    assert len(claims.gather(path)) == 2  # two archive lines are two records...
    live = claims.read_archive(path)[:1]
    monkeypatch.setattr(claims, "live_records", lambda out, arguments=None: live if out == "sweeps/sim_memorization_pop2" else [])
    assert len(claims.gather(path)) == 1  # ...but a run present here replaces its archived records, any name


def _fake_run(path, method: dict, summary: dict, epochs: list[dict]):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"method": method}))
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i, **r}) + "\n" for i, r in enumerate(epochs, 1)))
    return path


def test_early_figures_find_the_lowest_of_the_first_epochs_and_weigh_the_consistency(claims, tmp_path):
    flat = [[4, 0], [0, 4]]
    epochs = [{"test_accuracy": a, "test_confusion": flat, "train_consistency": 0.8, "train_ce": 2.0}
              for a in (0.7, 0.6, 0.5, 0.55, 0.65, 0.3)]  # epoch 6 (0.3) is after the early window
    epochs[2]["test_confusion"] = [[1, 3], [0, 4]]  # 7 of 8 predictions in the second class
    eac = _fake_run(tmp_path / "eac", {"name": "eac", "lam": 5.0}, {"method": "eac"}, epochs)
    assert claims.early_figures(eac) == {"accuracy_first": 0.7, "accuracy_dip": 0.5, "dip_epoch": 3,
                                         "top_class_share_dip": 0.875, "consistency_over_ce_first": 5.0 * 0.8 / 2.0}
    # SMEC's weight is resolved at set-up from the noise level: the summary's value counts, not the unset option
    smec = _fake_run(tmp_path / "smec", {"name": "smec", "consistency_weight": None},
                     {"method": "smec", "method_resolved": {"consistency_weight": 3.0}}, epochs)
    assert claims.early_figures(smec)["consistency_over_ce_first"] == 3.0 * 0.8 / 2.0
    ce = _fake_run(tmp_path / "ce", {"name": "ce"}, {"method": "ce"}, [{k: v for k, v in r.items() if "train" not in k}
                                                                       for r in epochs])
    assert "consistency_over_ce_first" not in claims.early_figures(ce)


def test_before_after_pairs_the_archived_cell_with_todays_runs(claims, tmp_path):
    before = tmp_path / "before.csv"
    before.write_text("metric,method,noise_kind,noise_rate,n,last_mean,last_std,best_mean,best_std\n"
                      "accuracy,lrn,symmetric,0.4,3,61.6,1.0,74.0,2.8\n"
                      "balanced_accuracy,lrn,symmetric,0.4,3,50.7,2.8,60.4,7.2\n"
                      "accuracy,gce,symmetric,0.2,1,75.1,,77.4,\n")
    runs = [{"sweep": "sweeps/sim_memorization", "method": "lrn", "noise_kind": "symmetric", "noise_rate": 0.4,
             "accuracy_last": a} for a in (0.62, 0.64, 0.66)]
    text = claims.before_after(runs, before)
    lrn = next(line for line in text.splitlines() if line.startswith("| lrn |"))
    assert lrn == f"| lrn | {claims.CHANGED['lrn']} | - | 61.6 ± 1.0 → 64.0 ± 2.0 | - |"
    assert "| gce | - | 75.1 (n=1) → - | - | - |" in text
