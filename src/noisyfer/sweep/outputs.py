"""Write a sweep's result files: per-run rows, aggregates over seeds and the paper-style tables."""

from __future__ import annotations

from pathlib import Path

from ..engine.rundir import atomic_write_bytes
from .aggregate import METRICS, PaperTable, aggregate, paper_table
from .results import write_rows

__all__ = ["write_outputs"]


def write_outputs(rows: list[dict], directory: str | Path, *, replicates=("seed", "noise.seed"),
                  metrics=METRICS) -> tuple[list[dict], dict[str, PaperTable], list[Path]]:
    """Write into ``directory``::

        results.csv / results.jsonl       one row per run
        aggregate.csv / aggregate.jsonl   mean, std and n over the replicates of each group
        tables.md                         every metric as a paper-style Markdown table
        tables/<metric>.csv / .tex        the same tables as CSV and LaTeX

    Returns the aggregate records, the tables by metric and the files written.
    """
    directory = Path(directory)
    files = list(write_rows(rows, directory, "results"))
    groups = aggregate(rows, replicates=replicates, metrics=metrics)
    files += write_rows(groups, directory, "aggregate")
    tables = {metric: paper_table(groups, metric) for metric in metrics}
    (directory / "tables").mkdir(parents=True, exist_ok=True)
    sections = ["# Sweep results", "",
                f"Mean ± sample std over {', '.join(replicates)} (finished runs only; `(n=k/m)` marks groups with "
                "unfinished runs). Best mean per column in bold.", ""]
    for metric, table in tables.items():
        sections += [f"## {table.title}", "", table.to_markdown(), ""]
        for suffix, text in (("csv", table.to_csv()), ("tex", table.to_latex())):
            path = directory / "tables" / f"{metric}.{suffix}"
            atomic_write_bytes(path, text.encode())
            files.append(path)
    atomic_write_bytes(directory / "tables.md", "\n".join(sections).encode())
    files.append(directory / "tables.md")
    return groups, tables, files
