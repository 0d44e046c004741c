"""Sweep specifications: grid parsing, deterministic run names, config layers, shards, changed settings."""

from __future__ import annotations

import pytest
import yaml

from noisyfer.config import parse_override
from noisyfer.errors import UserError
from noisyfer.sweep import SweepSpec, parse_shard, plan_point, split_grid_value
from noisyfer.sweep.spec import differing_keys


def test_grid_values_from_the_command_line():
    assert split_grid_value("0.2,0.4") == [0.2, 0.4]
    assert split_grid_value("ce") == ["ce"]
    assert split_grid_value("[10,20]") == [[10, 20]]  # a bracketed list is one value
    spec = SweepSpec.from_args(["method=ce,scn", "noise.kind=symmetric", "noise.rate=0.2,0.4", "seed=0,1",
                                "scn:method.relabel_epoch=2"])
    assert spec.grid == {"method": ["ce", "scn"], "noise.rate": [0.2, 0.4], "seed": [0, 1]}
    assert spec.fixed == {"noise.kind": "symmetric"} and spec.per_method == {"scn": {"method.relabel_epoch": 2}}
    names = [p.name for p in spec.points()]
    assert len(names) == 8 and len(set(names)) == 8
    assert names[0] == "method-ce__noise.rate-0.2__seed-0" and names[-1] == "method-scn__noise.rate-0.4__seed-1"
    again = SweepSpec.from_mapping(yaml.safe_load(spec.to_yaml()))  # what sweep.yaml stores
    assert [p.name for p in again.points()] == names and again.per_method == spec.per_method


def test_sweep_file_and_layers(tmp_path, tiny_overrides):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"method": {"name": "ce", "dropout": 0.3}, "train": {"epochs": 9, "lr": 0.01}}))
    scn_file = tmp_path / "scn_recipe.yaml"
    scn_file.write_text(yaml.safe_dump({"method": {"name": "scn", "margin2": 0.11}, "train": {"lr": 0.02}}))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "base": str(base), "set": {**dict(parse_override(o) for o in tiny_overrides if not o.startswith("out=")),
                                   "noise.kind": "symmetric"},
        "per_method": {"scn": {"method.relabel_epoch": 1}},
        "grid": {"config": [str(base), str(scn_file)], "noise.rate": [0.1]}}))
    spec = SweepSpec.from_args([str(sweep)])
    (ce_point, ce_cfg), (scn_point, scn_cfg) = spec.resolved(runs_dir=tmp_path / "runs")
    assert ce_point.name == "config-base__noise.rate-0.1" and scn_point.name == "config-scn_recipe__noise.rate-0.1"
    assert ce_cfg["method"]["dropout"] == 0.3 and ce_cfg["train"]["epochs"] == 2  # set overrides the files
    # the base file's ce options are dropped for the scn point; the recipe and per-method values apply
    assert scn_cfg["method"]["name"] == "scn" and scn_cfg["method"]["margin2"] == 0.11
    assert scn_cfg["method"]["relabel_epoch"] == 1 and scn_cfg["train"]["lr"] == 0.003  # tiny_overrides' lr
    assert scn_cfg["out"] == str(tmp_path / "runs") and scn_cfg["name"] == scn_point.name


def test_method_all_is_every_registered_method_with_its_own_recipe(tmp_path, tiny_overrides):
    from noisyfer.registry import METHODS

    for name in METHODS.names():  # a recipe per method, named by the method, as configs/<method>_sim.yaml
        (tmp_path / f"{name}_recipe.yaml").write_text(yaml.safe_dump({"method": {"name": name},
                                                                       "train": {"epochs": 7}}))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "base": str(tmp_path / "{method}_recipe.yaml"),
        "set": {**dict(parse_override(o) for o in tiny_overrides if not o.startswith(("out=", "train.epochs"))),
                "noise.kind": "symmetric"},
        "per_method": {"scn": {"method.relabel_epoch": 1}},
        "grid": {"noise.rate": [0.1, 0.2], "method": "all", "seed": [0]}}, sort_keys=False))
    spec = SweepSpec.from_args([str(sweep)])
    resolved = spec.resolved(runs_dir=tmp_path / "runs")
    assert [cfg["method"]["name"] for _, cfg in resolved] == METHODS.names() * 2  # registry order, per rate
    assert all(cfg["train"]["epochs"] == 7 for _, cfg in resolved)  # each point read its method's file
    assert resolved[0][0].name == f"noise.rate-0.1__method-{METHODS.names()[0]}__seed-0"
    # narrowed on the command line, the axis keeps its place: the same run names as in the full sweep
    narrowed = SweepSpec.from_args([str(sweep), "method=scn,ce"])
    assert [p.name for p in narrowed.points()] == [
        "noise.rate-0.1__method-scn__seed-0", "noise.rate-0.1__method-ce__seed-0",
        "noise.rate-0.2__method-scn__seed-0", "noise.rate-0.2__method-ce__seed-0"]
    assert SweepSpec.from_args(["method=all"]).axis_values("method") == METHODS.names()
    assert yaml.safe_load(spec.to_yaml())["grid"]["method"] == ["all"]  # sweep.yaml keeps 'all'
    with pytest.raises(UserError, match="named by the method, but the sweep names no method"):
        SweepSpec.from_mapping({"base": str(tmp_path / "{method}_recipe.yaml"),
                                "grid": {"seed": [0]}}).resolved(runs_dir=tmp_path)


def test_errors_name_the_problem(tmp_path, tiny_overrides):
    spec = SweepSpec.from_args(["method=ce,scn", "method.relabel_epoch=1", *tiny_overrides])
    with pytest.raises(UserError, match="sweep point method-ce: unknown key 'method.relabel_epoch'"):
        spec.resolved(runs_dir=tmp_path)
    with pytest.raises(UserError, match="unknown method 'rulx' \\(did you mean 'rul'"):
        SweepSpec.from_args(["method=ce,scn", "rulx:method.beta=1", *tiny_overrides]).resolved(runs_dir=tmp_path)
    # a registered method's overrides are a recipe kept for a wider sweep (a file narrowed on the command line)
    assert len(SweepSpec.from_args(["method=ce,scn", "rul:method.beta=1", *tiny_overrides]).resolved(
        runs_dir=tmp_path)) == 2
    with pytest.raises(UserError, match="same run-name part"):
        SweepSpec.from_args(["data.root=a/b,a_b"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {seed: [0]}\ntrain: {epochs: 1}\n")
    with pytest.raises(UserError, match="mixes sweep keys"):
        SweepSpec.from_args([str(bad)])


def test_shards_partition_the_grid():
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) == (1, 1)
    for text in ("0/3", "4/3", "x"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(text)
    spec = SweepSpec.from_args(["seed=0,1,2,3,4,5,6"])
    shards = [{p.name for p, _ in spec.resolved(runs_dir="r", shard=(i, 3))} for i in (1, 2, 3)]
    assert sorted(len(s) for s in shards) == [2, 2, 3]
    assert set().union(*shards) == {p.name for p in spec.points()} and not shards[0] & shards[1]


def test_plan_of_existing_runs(tmp_path):
    spec = SweepSpec.from_args(["seed=0,1"])
    (point, config), _ = spec.resolved(runs_dir=tmp_path)
    run = tmp_path / point.name
    assert plan_point(point, config, run).action == "start"
    run.mkdir()
    (run / "checkpoints").mkdir()
    assert plan_point(point, config, run).action == "start" and not run.exists()  # killed before its config
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "device": "cuda:1"}))
    assert plan_point(point, config, run).action == "resume"  # the device may differ
    (run / "summary.json").write_text('{"status": "finished", "epochs_done": 40}')
    assert plan_point(point, config, run).action == "skip"
    longer = {**config, "train": {**config["train"], "epochs": 50}}
    assert plan_point(point, longer, run).action == "resume"  # extended: continue
    changed = {**config, "train": {**config["train"], "lr": 0.5}}
    with pytest.raises(UserError, match=r"other settings \(train.lr\)"):
        plan_point(point, changed, run)
    assert differing_keys({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 1.0, "c": (1, 2)}}) == []


def test_an_axis_narrowed_to_one_value_keeps_its_place_in_run_names(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "set": dict(parse_override(o) for o in tiny_overrides if not o.startswith("out=")),
        "grid": {"noise.rate": [0.1, 0.2], "method": ["ce", "scn"], "seed": [0, 1]}}, sort_keys=False))
    narrowed = SweepSpec.from_args([str(sweep), "method=scn", "noise.rate=0.2", "train.lr=0.01"])
    points = narrowed.points()
    assert [p.name for p in points] == ["noise.rate-0.2__method-scn__seed-0", "noise.rate-0.2__method-scn__seed-1"]
    assert [p.former_name for p in points] == ["seed-0", "seed-1"]  # the names one-value narrowing used to give
    assert narrowed.fixed["train.lr"] == 0.01  # a key that is no axis of the file stays a fixed setting
    assert all(p.former_name is None for p in SweepSpec.from_args([str(sweep), "method=scn,ce"]).points())


def test_a_run_named_before_one_value_narrowing_is_renamed_not_trained_again(tmp_path, tiny_overrides):
    from noisyfer.sweep.planning import plan_sweep

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "set": {**dict(parse_override(o) for o in tiny_overrides if not o.startswith("out=")), "train.epochs": 1},
        "grid": {"method": ["ce", "scn"], "seed": [0]}}, sort_keys=False))
    spec = SweepSpec.from_args([str(sweep), "method=ce"])
    out = tmp_path / "sweep"
    former = out / "runs" / "seed-0"
    former.mkdir(parents=True)
    config = spec.resolved(runs_dir=out / "runs")[0][1]
    (former / "config.yaml").write_text(yaml.safe_dump({**config, "name": "seed-0"}))  # the run, named as before
    lines = []
    plans = plan_sweep(spec, out, dry_run=True, echo=lines.append)
    assert former.is_dir() and plans[0].run_dir == former  # a dry run renames nothing
    assert any("rename seed-0 -> method-ce__seed-0" in line for line in lines)
    plans = plan_sweep(spec, out, echo=lines.append)
    assert not former.exists() and (out / "runs" / "method-ce__seed-0" / "config.yaml").is_file()
    assert plans[0].run_dir == out / "runs" / "method-ce__seed-0"
