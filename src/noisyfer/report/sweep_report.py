"""The report of a sweep (or of several runs): paper-style tables, accuracy against the noise rate,
per-class accuracy, and the analyses of every run compared across methods."""

from __future__ import annotations

from ..analysis.rundata import RunData
from ..errors import NoisyferError
from ..papers import SHORT
from ..sweep.aggregate import METRICS, aggregate, mean_std, paper_table, table_layout
from .analyses import RunAnalyses
from .document import Document, Figure, Section, Table, progress
from .figures import (confusion_grid_figure, memorization_figure, png_bytes, relabel_activity_figure,
                      sweep_lines_figure)

__all__ = ["build_sweep_report", "RunGroups"]


class RunGroups:
    """The runs of a sweep arranged as the tables are: rows = methods, columns = noise settings,
    replicates (seeds) within a cell."""

    def __init__(self, rows: list[dict], *, replicates=("seed", "noise.seed")):
        self.rows = rows
        self.replicates = tuple(replicates)
        ignore = {"seed" if r == "seed" else r for r in self.replicates}
        self.row_labels, self.columns, positions = table_layout(rows, ignore=ignore)
        self.cells: dict[tuple[int, int], list[dict]] = {}
        for row, pos in zip(rows, positions):
            self.cells.setdefault(pos, []).append(row)
        self._analyses: dict[str, RunAnalyses] = {}

    def finished(self, i: int, j: int) -> list[dict]:
        return [r for r in self.cells.get((i, j), []) if r.get("status") == "finished"]

    def representative(self, i: int, j: int) -> dict | None:
        """The finished run of a cell with the lowest replicate values (e.g. seed 0)."""
        runs = self.finished(i, j)
        key = lambda r: tuple(str(r.get("seed" if k == "seed" else k)) for k in self.replicates)  # noqa: E731
        return min(runs, key=key) if runs else None

    def analyses(self, row: dict, *, device: str | None) -> RunAnalyses:
        path = row["run_dir"]
        if path not in self._analyses:
            self._analyses[path] = RunAnalyses(path, device=device)
        return self._analyses[path]


def _unfinished(rows: list[dict]) -> str:
    """``no finished run (1 failed, 2 running)``: why a cell of a table has no numbers."""
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.get("status", "missing")] = statuses.get(r.get("status", "missing"), 0) + 1
    return "no finished run (" + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ")"


def _figure(section: Section, fig, title: str, name: str, caption: str | None = None) -> None:
    section.figures.append(Figure(title=title, png=png_bytes(fig), name=name, caption=caption))


def _overview(doc: Document, rows: list[dict], source: str) -> None:
    section = doc.section("Runs")
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    section.note(f"{len(rows)} runs from {source}: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))

    def pct(v):
        return None if v is None else f"{100 * v:.2f}"

    section.tables.append(Table("Every run", ("run", "method", "noise", "seed", "status", "epochs", "best acc (%)",
                                              "last acc (%)", "balanced last (%)"),
                                [(r["name"], r["method"], f"{r['noise_kind']} {r['noise_rate']:g}", r["seed"],
                                  f"failed, {r['failure']}" if r.get("failure") else r["status"], r.get("epochs_done"), pct(r.get("accuracy_best")),
                                  pct(r.get("accuracy_last")), pct(r.get("balanced_accuracy_last"))) for r in rows]))


def _tables(doc: Document, rows: list[dict], replicates) -> list[dict]:
    section = doc.section("Accuracy tables (paper layout)")
    section.note(f"Rows = methods, columns = noise settings; mean ± sample std over {', '.join(replicates)} of the "
                 "finished runs, in %; best mean of each column in bold; (n=k/m) = k of m runs finished.")
    groups = aggregate(rows, replicates=replicates)
    for metric in METRICS:
        table = paper_table(groups, metric)
        best = table.best()
        body = [[label, *[f"**{table.cell(i, j)}**" if best[i, j] else table.cell(i, j)
                          for j in range(len(table.columns))]] for i, label in enumerate(table.rows)]
        section.tables.append(Table(table.title, (table.row_header, *table.columns), body))
    return groups


def _lines(doc: Document, groups: list[dict]) -> None:
    section = doc.section("Accuracy against the noise rate")
    for metric, what in (("accuracy_best", "best epoch"), ("accuracy_last", "last epoch"),
                         ("balanced_accuracy_last", "balanced, last epoch")):
        lines: dict[str, tuple[list, list, list]] = {}
        several_kinds = len({g.get("noise_kind") for g in groups if g.get("noise_kind") != "none"}) > 1
        for g in sorted(groups, key=lambda g: float(g.get("noise_rate") or 0.0)):
            label = f"{g['method']} ({g['noise_kind']})" if several_kinds else g["method"]
            rates, means, stds = lines.setdefault(label, ([], [], []))
            rates.append(g.get("noise_rate") or 0.0)
            means.append(g[f"{metric}_mean"])
            stds.append(g[f"{metric}_std"])
        ylabel = "balanced accuracy (%)" if metric.startswith("balanced") else "test accuracy (%)"
        _figure(section, sweep_lines_figure(lines, title=f"Test {what}: mean ± std over seeds", ylabel=ylabel),
                f"{metric} against the noise rate", f"lines_{metric}")


def _per_class(doc: Document, g: RunGroups, class_names, per_class_of: dict) -> None:
    section = doc.section("Per-class accuracy (last epoch)")
    if class_names is None:
        section.note("n/a: no finished run")
        return
    for j, column in enumerate(g.columns):
        body = []
        for i, label in enumerate(g.row_labels):
            runs = g.finished(i, j)
            if not runs:
                if g.cells.get((i, j)):
                    body.append((label, *[None] * len(class_names), _unfinished(g.cells[(i, j)])))
                continue
            per_class = [per_class_of.get(r["run_dir"]) or [None] * len(class_names) for r in runs]
            cells = []
            for c in range(len(class_names)):
                mean, std, n = mean_std([p[c] for p in per_class])
                cells.append(None if n == 0 else f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if n > 1 else ""))
            mean, std, n = mean_std([r.get("balanced_accuracy_last") for r in runs])
            body.append((label, *cells, None if n == 0 else f"{100 * mean:.2f}"))
        section.tables.append(Table(f"Noise {column}: per-class test accuracy (%), mean ± std over seeds",
                                    ("method", *class_names, "balanced"), body))
        panels = {}
        for i, label in enumerate(g.row_labels):
            rep = g.representative(i, j)
            confusion = rep and RunData(rep["run_dir"]).summary.get("confusion_last")
            if confusion:
                panels[label] = confusion
        if panels:
            fig = confusion_grid_figure(panels, class_names, title=f"Noise {column}: test confusion, last epoch")
            _figure(section, fig, f"Confusion matrices, noise {column}", f"confusion_{j}",
                    "lowest seed of each method; colour = share of the true class, numbers = counts")


_ANALYSIS_COLUMNS = (
    ("AUROC of clean_score", lambda a: a.detection.auroc if a.detection and a.detection.auroc is not None else None),
    ("R-precision of clean_score",
     lambda a: (a.detection.at_noise_count or {}).get("precision") if a.detection else None),
    ("relabel flag precision", lambda a: (a.detection.relabel or {}).get("precision") if a.detection else None),
    ("relabel flag recall", lambda a: (a.detection.relabel or {}).get("recall") if a.detection else None),
    ("relabeled to the true class", lambda a: (a.detection.relabel_accuracy or {}).get("relabel_precision")
     if a.detection else None),
    ("back-and-forth samples", lambda a: a.relabel.back_and_forth if a.relabel else None),
    ("label changes", lambda a: a.relabel.total_changes if a.relabel else None),
    ("memorized (last epoch)", lambda a: a.run.summary.get("noisy_memorized_last")),
    ("KL(true‖learned) of label_dist", lambda a: a.fidelity["kl_mean"] if a.fidelity else None),
)


def _analyses(doc: Document, g: RunGroups, *, device) -> None:
    section = doc.section("Noise detection, relabeling, memorization, label distributions")
    section.note("Per method and noise setting, mean ± std over the finished runs. n/a: the method does not "
                 "provide the quantity (no clean_score, no relabels, no label distributions) or the truth is unknown. "
                 "R-precision = precision of the k lowest-scored samples, k = the number of mislabeled samples.")
    for j, column in enumerate(g.columns):
        body = []
        for i, label in enumerate(g.row_labels):
            runs = g.finished(i, j)
            if not runs:
                if g.cells.get((i, j)):
                    body.append((label, _unfinished(g.cells[(i, j)]), *[None] * (len(_ANALYSIS_COLUMNS) - 1)))
                continue
            values = {name: [] for name, _ in _ANALYSIS_COLUMNS}
            for r in runs:
                a = g.analyses(r, device=device)
                for name, get in _ANALYSIS_COLUMNS:
                    try:
                        values[name].append(get(a))
                    except NoisyferError:
                        values[name].append(None)
            cells = []
            for name, _ in _ANALYSIS_COLUMNS:
                mean, std, n = mean_std([v for v in values[name] if v is not None])
                digits = 1 if name in ("back-and-forth samples", "label changes") else 3
                cells.append(None if n == 0 else f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else ""))
            body.append((label, *cells))
        section.tables.append(Table(f"Noise {column}", ("method", *[n for n, _ in _ANALYSIS_COLUMNS]), body))


def _curves(doc: Document, g: RunGroups, *, device) -> None:
    section = doc.section("Memorization and relabel activity per epoch")
    for j, column in enumerate(g.columns):
        memo, relabels = {}, {}
        for i, label in enumerate(g.row_labels):
            rep = g.representative(i, j)
            if rep is None:
                continue
            a = g.analyses(rep, device=device)
            memo[label] = a.curves
            if a.relabel is not None:
                report = a.relabel
                epochs = (report.epochs or list(range(report.num_rows)))[1:]
                relabels[label] = (epochs, report.changes_per_epoch, report.returns_per_epoch)
        if memo:
            fig = memorization_figure(memo, title=f"Noise {column}: mislabeled samples memorized / corrected")
            _figure(section, fig, f"Memorization, noise {column}", f"memorization_{j}", "lowest seed of each method")
        if relabels:
            _figure(section, relabel_activity_figure(relabels, title=f"Noise {column}: relabels per epoch"),
                    f"Relabel activity, noise {column}", f"relabels_{j}",
                    "relabel inconsistency (" + SHORT["000"] + "): samples relabeled, and relabeled back to an earlier label")


def build_sweep_report(rows: list[dict], *, title: str, source: str, replicates=("seed", "noise.seed"),
                       features: bool = True, device: str | None = "cpu", tsne_samples: int = 600) -> Document:
    """The :class:`Document` of a set of runs (result rows from :mod:`noisyfer.sweep.results`)."""
    doc = Document(title=title, subtitle=source)
    finished = [r for r in rows if r["status"] == "finished"]
    class_names = None
    per_class = {}  # run_dir -> per-class accuracy, kept out of the rows (whose keys are identity)
    for r in finished:
        data = RunData(r["run_dir"])
        per_class[r["run_dir"]] = data.summary.get("per_class_accuracy_last")
        class_names = class_names or data.class_names
    with progress("1/5 tables and lines"):
        _overview(doc, rows, source)
        groups = _tables(doc, rows, replicates)
        _lines(doc, groups)
    g = RunGroups(rows, replicates=replicates)
    with progress("2/5 per-class accuracy"):
        _per_class(doc, g, class_names, per_class)
    with progress("3/5 noise detection and relabeling"):
        _analyses(doc, g, device=device)
    with progress("4/5 curves"):
        _curves(doc, g, device=device)
    if features and finished:
        from .sweep_features import features_sections

        with progress("5/5 features: compactness, t-SNE, distances, CAMs (loads each method's weights)"):
            features_sections(doc, g, class_names=class_names, device=device, tsne_samples=tsne_samples)
    return doc

