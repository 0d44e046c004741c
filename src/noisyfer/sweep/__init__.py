"""Sweeps: grids of runs (methods x noise kinds x rates x seeds), run in parallel, resumable, shardable,
and their results aggregated over seeds into tables laid out like the papers'.

>>> from noisyfer.sweep import SweepSpec, run_sweep, collect_sweep, write_outputs   # doctest: +SKIP
>>> spec = SweepSpec.from_args(["method=ce,scn", "noise.kind=symmetric", "noise.rate=0.2,0.4", "seed=0,1"])
>>> run_sweep(spec, "sweeps/demo", jobs=2)                                           # doctest: +SKIP
>>> write_outputs(collect_sweep("sweeps/demo"), "sweeps/demo")                       # doctest: +SKIP
"""

from __future__ import annotations

from .aggregate import METRIC_TITLES, METRICS, PaperTable, aggregate, mean_std, paper_table
from .outputs import write_outputs
from .planning import Planned, plan_point
from .results import RESULT_METRICS, collect_runs, collect_sweep, load_sweep_spec, rows_to_csv, write_rows
from .runner import run_sweep
from .spec import DEFAULT_REPLICATES, GridPoint, SweepSpec, parse_shard, split_grid_value

__all__ = [
    "DEFAULT_REPLICATES", "METRICS", "METRIC_TITLES", "RESULT_METRICS", "GridPoint", "PaperTable", "Planned",
    "SweepSpec", "aggregate", "collect_runs", "collect_sweep", "load_sweep_spec", "mean_std", "paper_table",
    "parse_shard", "plan_point", "rows_to_csv", "run_sweep", "split_grid_value", "write_outputs", "write_rows",
]
