"""Mean +- std over seeds, and tables laid out like the papers' (rows methods, columns noise rates).

Runs that differ only in a replicate axis (``seed``, ``noise.seed`` by default) form a group; for each
metric the group's mean, sample standard deviation (``ddof=1``, NaN for a single run) and the number
of finished runs it covers are reported. Only finished runs count.

:func:`paper_table` lays a metric out as the papers do: one row per method (and any other axis that
tells two rows of one method apart), one column per noise rate (and kind, when several), cells
``mean ± std`` in percent with the best mean of each column in bold. It renders to Markdown, CSV and
LaTeX (booktabs).

Examples
--------
>>> mean, std, n = mean_std([0.80, 0.84, 0.88, None])
>>> round(mean, 6), round(std, 6), n
(0.84, 0.04, 3)
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from ..cli.tables import markdown_table

__all__ = ["METRIC_TITLES", "PaperTable", "aggregate", "identity_fields", "mean_std", "paper_table", "table_layout"]

METRIC_TITLES = {
    "accuracy_best": "test accuracy (%), best epoch (SCN, DMUE, LDLVA, SMEC convention)",
    "accuracy_last": "test accuracy (%), last epoch (RUL, EAC, embedding-proximity convention)",
    "accuracy_last5": "test accuracy (%), mean of the last 5 epochs (NCCTFER convention)",
    "balanced_accuracy_best": "balanced accuracy (%), best over epochs (SMEC)",
    "balanced_accuracy_last": "balanced accuracy (%), last epoch",
    "balanced_accuracy_last5": "balanced accuracy (%), mean of the last 5 epochs",
}
METRICS = tuple(METRIC_TITLES)
#: Row fields that are results, not identity.
_RESULT_FIELDS = {"name", "status", "realized_rate", "epochs", "run_dir", "failure"}


def mean_std(values, *, ddof: int = 1) -> tuple[float, float, int]:
    """``(mean, std, n)`` of the finite values (``None``/NaN skipped); std NaN when ``n <= ddof``."""
    finite = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=np.float64)
    n = int(finite.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    std = float(finite.std(ddof=ddof)) if n > ddof else float("nan")
    return float(finite.mean()), std, n


def identity_fields(rows: list[dict], metrics=METRICS) -> list[str]:
    """Columns of ``rows`` that say which run a row is (method, noise, seed, other axes)."""
    from .results import RESULT_METRICS

    skip = _RESULT_FIELDS | set(RESULT_METRICS) | set(metrics)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in skip and k not in fields]
    return fields


def _replicate_field(key: str) -> str:
    return "seed" if key == "seed" else key


def aggregate(rows: list[dict], *, replicates=("seed", "noise.seed"), metrics=METRICS, ddof: int = 1) -> list[dict]:
    """One record per group of rows equal in every identity field but the ``replicates``.

    Each record holds the group's identity fields, ``runs`` (rows in the group), ``finished`` and, per
    metric, ``<metric>_mean``, ``<metric>_std`` and ``<metric>_n`` over its finished runs.
    """
    replicate_fields = {_replicate_field(r) for r in replicates}
    keys = [f for f in identity_fields(rows, metrics) if f not in replicate_fields]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(_hashable(row.get(k)) for k in keys), []).append(row)
    out = []
    for members in groups.values():
        record = {k: members[0].get(k) for k in keys}
        finished = [r for r in members if r.get("status") == "finished"]
        record.update({"runs": len(members), "finished": len(finished),
                       "failed": sum(r.get("status") == "failed" for r in members)})
        for metric in metrics:
            mean, std, n = mean_std([r.get(metric) for r in finished], ddof=ddof)
            record.update({f"{metric}_mean": mean, f"{metric}_std": std, f"{metric}_n": n})
        out.append(record)
    return out


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _rate_label(kind: str, rate: float, kinds: set) -> str:
    if kind == "none":
        return "clean"
    percent = f"{100 * float(rate):g}%"
    return f"{kind} {percent}" if len(kinds) > 1 else percent


@dataclass
class PaperTable:
    """A metric laid out with one row per method and one column per noise setting."""

    title: str
    row_header: str
    columns: list[str]
    rows: list[str]
    mean: np.ndarray  # (rows, columns), fractions; NaN = no finished run
    std: np.ndarray
    n: np.ndarray
    runs: np.ndarray
    failed: np.ndarray | None = None  # (rows, columns) runs whose process failed

    def cell(self, i: int, j: int, *, pm: str = "±") -> str:
        failed = int(self.failed[i, j]) if self.failed is not None else 0
        if self.n[i, j] == 0:
            return f"failed ({failed}/{self.runs[i, j]})" if failed else "n/a"
        text = f"{100 * self.mean[i, j]:.2f}"
        if np.isfinite(self.std[i, j]):
            text += f" {pm} {100 * self.std[i, j]:.2f}"
        if self.n[i, j] < self.runs[i, j]:
            text += f" (n={self.n[i, j]}/{self.runs[i, j]}{f', {failed} failed' if failed else ''})"
        return text

    def best(self) -> np.ndarray:
        """(rows, columns) True at the highest mean of each column (ties all marked)."""
        masked = np.where(self.n > 0, self.mean, -np.inf)
        if masked.size == 0:
            return np.zeros(masked.shape, dtype=bool)
        return (self.n > 0) & (masked >= masked.max(axis=0, keepdims=True) - 1e-12)

    def to_markdown(self, *, bold_best: bool = True) -> str:
        best = self.best() if bold_best else np.zeros_like(self.n, bool)
        body = [[label, *[f"**{self.cell(i, j)}**" if best[i, j] else self.cell(i, j)
                          for j in range(len(self.columns))]]
                for i, label in enumerate(self.rows)]
        return markdown_table([self.row_header, *self.columns], body)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([self.row_header, *self.columns])
        for i, label in enumerate(self.rows):
            writer.writerow([label, *[self.cell(i, j, pm="+-") for j in range(len(self.columns))]])
        return buffer.getvalue()

    def to_latex(self) -> str:
        def esc(text: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
                text = text.replace(a, b)
            return text

        best = self.best()
        lines = [f"% {esc(self.title)}", r"\begin{tabular}{l" + "c" * len(self.columns) + "}", r"\toprule",
                 " & ".join([esc(self.row_header), *map(esc, self.columns)]) + r" \\", r"\midrule"]
        for i, label in enumerate(self.rows):
            cells = []
            for j in range(len(self.columns)):
                text = esc(self.cell(i, j, pm="PLUSMINUS")).replace("PLUSMINUS", r"$\pm$")
                cells.append(rf"\textbf{{{text}}}" if best[i, j] else text)
            lines.append(" & ".join([esc(label), *cells]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"


def _column_of(record: dict) -> tuple[str, float]:
    return (str(record.get("noise_kind")), float(record.get("noise_rate") or 0.0))


def table_layout(records: list[dict], *, ignore=()) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    """Row labels, column labels and the (row, column) of each record, for rows = methods and
    columns = noise settings. A field other than the method joins a row's label only where it tells
    two records of one method and one column apart (``ignore``: fields never shown, e.g. seeds)."""
    kinds = {r.get("noise_kind") for r in records}
    column_keys = sorted({_column_of(r) for r in records}, key=lambda kr: (kr[0] != "none", kr[0], kr[1]))
    skip = {"method", "noise_kind", "noise_rate", "runs", "finished", "failed", *ignore}
    extra = [k for k in identity_fields(records, ()) if k not in skip and not k.endswith(("_mean", "_std", "_n"))]
    shown = [k for k in extra if any(a.get("method") == b.get("method") and _column_of(a) == _column_of(b)
                                     and a.get(k) != b.get(k) for a in records for b in records)]
    row_keys: list[tuple] = []
    for r in records:
        key = (r.get("method"), *[_hashable(r.get(k)) for k in shown])
        if key not in row_keys:
            row_keys.append(key)
    labels = [", ".join([str(key[0]), *[f"{k}={v}" for k, v in zip(shown, key[1:])]]) for key in row_keys]
    positions = [(row_keys.index((r.get("method"), *[_hashable(r.get(k)) for k in shown])),
                  column_keys.index(_column_of(r))) for r in records]
    return labels, [_rate_label(k, rate, kinds) for k, rate in column_keys], positions


def paper_table(aggregated: list[dict], metric: str, *, title: str | None = None) -> PaperTable:
    """Lay ``metric`` of :func:`aggregate` records out as rows = methods, columns = noise settings."""
    labels, columns, positions = table_layout(aggregated)
    shape = (len(labels), len(columns))
    mean, std = np.full(shape, np.nan), np.full(shape, np.nan)
    n, runs, failed = np.zeros(shape, dtype=int), np.zeros(shape, dtype=int), np.zeros(shape, dtype=int)
    for r, (i, j) in zip(aggregated, positions):
        mean[i, j], std[i, j] = r[f"{metric}_mean"], r[f"{metric}_std"]
        n[i, j], runs[i, j], failed[i, j] = r[f"{metric}_n"], r["runs"], r.get("failed", 0)
    return PaperTable(title=title or METRIC_TITLES.get(metric, metric), row_header="method", columns=columns,
                      rows=labels, mean=mean, std=std, n=n, runs=runs, failed=failed)
