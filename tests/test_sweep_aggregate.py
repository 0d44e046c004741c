"""Aggregation over seeds and the paper-style tables, on known numbers; collecting merged shards."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import yaml

from noisyfer.cli.main import main
from noisyfer.sweep import SweepSpec, aggregate, collect_sweep, mean_std, paper_table, write_outputs


def _row(method, rate, seed, acc, status="finished", **extra):
    return {"name": f"{method}-{rate}-{seed}", "method": method, "noise_kind": "symmetric", "noise_rate": rate,
            "seed": seed, "status": status, "accuracy_best": acc, "accuracy_last": None if acc is None else acc - 0.1,
            **extra}


ROWS = [
    _row("ce", 0.2, 0, 0.80), _row("ce", 0.2, 1, 0.84), _row("ce", 0.2, 2, 0.88),
    _row("ce", 0.4, 0, 0.60), _row("ce", 0.4, 1, 0.70),
    _row("scn", 0.2, 0, 0.90), _row("scn", 0.2, 1, 0.50, status="running"),  # unfinished: left out
    _row("scn", 0.4, 0, None), _row("scn", 0.4, 1, None),  # no number: n/a, never 0
]


def test_mean_and_sample_std_on_known_numbers():
    mean, std, n = mean_std([0.80, 0.84, 0.88])
    # deviations -0.04, 0, 0.04: sample variance (0.0016 + 0.0016) / (3 - 1) = 0.0016
    assert mean == pytest.approx(0.84) and std == pytest.approx(0.04) and n == 3
    assert mean_std([0.80, 0.84, 0.88], ddof=0)[1] == pytest.approx(math.sqrt(0.0032 / 3))
    assert mean_std([0.7, None, float("nan")]) == (0.7, pytest.approx(float("nan"), nan_ok=True), 1)
    assert mean_std([])[2] == 0


def test_aggregate_groups_over_seeds():
    groups = {(g["method"], g["noise_rate"]): g for g in aggregate(ROWS)}
    assert set(groups) == {("ce", 0.2), ("ce", 0.4), ("scn", 0.2), ("scn", 0.4)}
    ce = groups[("ce", 0.4)]
    assert ce["runs"] == 2 and ce["accuracy_best_mean"] == pytest.approx(0.65)
    assert ce["accuracy_best_std"] == pytest.approx(math.sqrt(0.005))  # (0.05^2 * 2) / 1
    assert ce["accuracy_last_mean"] == pytest.approx(0.55)
    scn = groups[("scn", 0.2)]
    assert (scn["runs"], scn["finished"], scn["accuracy_best_n"]) == (2, 1, 1) and scn["accuracy_best_mean"] == 0.9
    assert groups[("scn", 0.4)]["accuracy_best_n"] == 0 and math.isnan(groups[("scn", 0.4)]["accuracy_best_mean"])
    assert "seed" not in ce


def test_paper_table_layout_and_formats():
    table = paper_table(aggregate(ROWS), "accuracy_best")
    assert table.rows == ["ce", "scn"] and table.columns == ["20%", "40%"]
    assert table.cell(0, 0) == "84.00 ± 4.00"
    assert table.cell(1, 0) == "90.00 (n=1/2)" and table.cell(1, 1) == "n/a"
    assert table.best().tolist() == [[False, True], [True, False]]
    markdown = table.to_markdown()
    assert "| scn    | **90.00 (n=1/2)** | n/a" in markdown and "**65.00 ± 7.07**" in markdown
    csv = table.to_csv().splitlines()
    assert csv[0] == "method,20%,40%" and csv[2] == "scn,90.00 (n=1/2),n/a"
    latex = table.to_latex()
    assert r"ce & 84.00 $\pm$ 4.00 & \textbf{65.00 $\pm$ 7.07} \\" in latex and r"20\% & 40\%" in latex


def test_rows_split_only_where_another_axis_differs():
    rows = [dict(r, **{"method.margin2": m}) for r in ROWS[:2] for m in (0.1, 0.2)]
    rows += [dict(ROWS[5], **{"method.margin2": 0.1})]
    labels = paper_table(aggregate(rows), "accuracy_best").rows
    assert labels == ["ce, method.margin2=0.1", "ce, method.margin2=0.2", "scn, method.margin2=0.1"]


def _fake_run(run_dir, config, acc):
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "summary.json").write_text(json.dumps({
        "status": "finished", "epochs_done": 1, "accuracy_best": acc, "accuracy_last": acc,
        "noise": {"kind": "symmetric", "rate": config["noise"]["rate"], "realized_rate": config["noise"]["rate"]}}))


def test_merged_shards_collect_into_one_table(tmp_path, tiny_overrides, capsys):
    spec = SweepSpec.from_args([*tiny_overrides, "method=ce,scn", "noise.kind=symmetric", "noise.rate=0.2,0.4",
                                "seed=0,1"])
    machines = [tmp_path / "machine1", tmp_path / "machine2"]
    accuracy = {}
    for i, machine in enumerate(machines, 1):
        machine.mkdir()
        (machine / "sweep.yaml").write_text(spec.to_yaml())
        for point, config in spec.resolved(runs_dir=machine / "runs", shard=(i, 2)):
            accuracy[point.name] = 0.5 + 0.01 * point.index
            _fake_run(machine / "runs" / point.name, config, accuracy[point.name])
    assert [r["status"] for r in collect_sweep(machines[0])].count("missing") == 4
    for run in (machines[1] / "runs").iterdir():  # merging = copying the run directories together
        shutil.copytree(run, machines[0] / "runs" / run.name)
    rows = collect_sweep(machines[0])
    assert [r["accuracy_best"] for r in rows] == [accuracy[p.name] for p in spec.points()]
    groups, tables, files = write_outputs(rows, machines[0])
    # ce at 20 %: points 0 and 1 (seeds 0, 1) -> mean of 0.50 and 0.51
    assert tables["accuracy_best"].cell(0, 0) == "50.50 ± 0.71"
    assert (machines[0] / "tables" / "accuracy_best.tex").is_file() and (machines[0] / "results.csv").is_file()
    header = (machines[0] / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["name", "method", "noise_kind", "noise_rate", "seed", "status"]
    assert main(["sweep", "--collect", "--out", str(machines[0])]) == 0
    assert "| ce     | 50.50 ± 0.71" in capsys.readouterr().out


def test_markdown_cells_escape_the_column_separator():
    from noisyfer.cli.tables import markdown_table

    table = markdown_table(["name|alias", "value"], [["a|b", 0.5], [None, 2]])
    assert table.splitlines() == [
        "| name\\|alias | value  |",
        "|-------------|--------|",
        "| a\\|b        | 0.5000 |",
        "| n/a         | 2      |",
    ]
