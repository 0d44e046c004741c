"""Issue 13 in sweeps: a failed point is recorded as failed with its log, and the tables say so; a run
made before a configuration key existed (or with a relative data path) is still the sweep's run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

import yaml

from noisyfer.config import config_from_args
from noisyfer.engine.provenance import absolute_paths
from noisyfer.sweep import SweepSpec, collect_sweep, run_sweep, write_outputs
from noisyfer.sweep.planning import plan_point
from noisyfer.sweep.runner import failure_path


def _fake_training(script: str):
    """Points run ``script`` (plain Python, given the run directory) instead of ``noisyfer train``."""
    def command(item, sweep_dir, device):
        return [sys.executable, "-c", script, str(item.run_dir)]

    return mock.patch("noisyfer.sweep.runner._command", command)


FAIL = "import sys\nprint('epoch 1/1 ...')\nprint('noisyfer: error: data.root: directory not found: /x')\nsys.exit(2)"
FINISH = ("import json, pathlib, sys\nrun = pathlib.Path(sys.argv[1])\n(run / 'checkpoints').mkdir(parents=True)\n"
          "(run / 'config.yaml').write_text('seed: 0\\n')\n(run / 'summary.json').write_text(json.dumps("
          "{'status': 'finished', 'epochs_done': 1, 'accuracy_last': 0.5, 'accuracy_best': 0.5}))")


def test_a_failed_point_is_recorded_and_cleared_when_it_finishes(tmp_path):
    spec = SweepSpec.from_args(["data=noisyfer", "data.root=/x", "train.epochs=1", "seed=0,1"])
    out = tmp_path / "sweep"
    with _fake_training(FAIL):
        counts = run_sweep(spec, out, shard=(1, 2), echo=lambda line: None)  # point seed-0 only
    assert counts["failed"] == 1
    record = json.loads(failure_path(out, "seed-0").read_text())
    assert record["exit_status"] == 2 and Path(record["log"]) == (out / "logs" / "seed-0.log").resolve()
    assert record["message"] == "noisyfer: error: data.root: directory not found: /x"

    rows = collect_sweep(out, spec)
    assert [r["status"] for r in rows] == ["failed", "missing"]
    assert rows[0]["failure"] == f"exit status 2: {record['message']} (log: {record['log']})"
    groups, tables, _ = write_outputs(rows, out, replicates=spec.replicates)
    assert groups[0]["failed"] == 1 and tables["accuracy_last"].cell(0, 0) == "failed (1/2)"
    assert "failed (1/2)" in (out / "tables.md").read_text()

    with _fake_training(FINISH):
        assert run_sweep(spec, out, shard=(1, 2), echo=lambda line: None)["finished"] == 1
    assert not failure_path(out, "seed-0").exists()
    rows = collect_sweep(out, spec)
    assert rows[0]["status"] == "finished" and rows[0]["failure"] is None
    assert write_outputs(rows, out)[1]["accuracy_last"].cell(0, 0) == "50.00 (n=1/2)"


def test_a_run_of_an_older_version_with_relative_paths_is_still_the_points_run(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_data_dir.parent)
    spec = SweepSpec.from_args(["data=noisyfer", f"data.root={tiny_data_dir.name}", "train.epochs=3", "seed=0"])
    (point, config), = spec.resolved(runs_dir=tmp_path / "runs")
    run_dir = tmp_path / "runs" / point.name
    run_dir.mkdir(parents=True)
    stored, _ = absolute_paths(config_from_args(None, [f"{k}={json.dumps(v)}" for k, v in _flat(config).items()]))
    tree = stored.to_dict()
    del tree["data"]["min_side"]  # a key added after the run was made (its default is what the run used)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    (run_dir / "summary.json").write_text(json.dumps({"status": "running", "epochs_done": 1}))
    planned = plan_point(point, config, run_dir)
    assert (planned.action, planned.reason) == ("resume", "1 of 3 epochs done")


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key != "options":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
