"""``noisyfer report``: one self-contained HTML file and a Markdown summary for a run, a sweep, or
several runs compared."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..analysis.rundata import find_runs, is_run_dir
from ..errors import UserError
from .html import write_html
from .markdown import write_markdown

__all__ = ["ReportFiles", "write_report"]


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    kind: str  # "run", "sweep" or "runs"
    results: list[Path]


def _collection(paths: list[Path]) -> list[Path]:
    runs: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"not a directory: {path}")
        found = find_runs(path)
        if not found:
            raise UserError(f"{path}: no run directory (config.yaml + summary.json) in it")
        runs += [r for r in found if r not in runs]
    return runs


def write_report(paths: list[str | Path], *, out: str | Path | None = None, features: bool = True,
                 checkpoint: str = "best", device: str | None = None, top: int = 24,
                 tsne_samples: int = 800) -> ReportFiles:
    """Write the report of ``paths``: one run directory, one sweep directory (``sweep.yaml``), or any
    directories holding run directories (compared as one collection).

    The HTML goes to ``out`` (default ``DIR/report.html`` for one directory), the Markdown summary
    beside it (``.md``, figures in ``<stem>_figures/``). A sweep's result files (``results.csv``,
    ``aggregate.csv``, ``tables.md``, ``tables/``) are rewritten from its run directories first.
    """
    from ..sweep import collect_runs, collect_sweep, load_sweep_spec, write_outputs
    from .run_report import build_run_report
    from .sweep_report import build_sweep_report

    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("report: give a run directory, a sweep directory or directories of runs")
    if out is None and len(paths) > 1:
        raise UserError("report: with several directories, say where the report goes (--out FILE.html)")
    html_path = Path(out) if out else paths[0] / "report.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out: expected a .html file name, got {html_path}")
    existing = next(p for p in (html_path.parent.absolute(), *html_path.parent.absolute().parents) if p.exists())
    if not existing.is_dir():  # found before the analyses run, not after
        raise UserError(f"--out: {existing} is not a directory")
    results: list[Path] = []
    if len(paths) == 1 and (paths[0] / "sweep.yaml").is_file():
        spec = load_sweep_spec(paths[0])
        rows = collect_sweep(paths[0], spec)
        results = write_outputs(rows, paths[0], replicates=spec.replicates)[2]
        doc = build_sweep_report(rows, title=f"noisyfer sweep report: {paths[0].resolve().name}", source=str(paths[0]),
                                 replicates=spec.replicates, features=features, device=device,
                                 tsne_samples=tsne_samples)
        kind = "sweep"
    elif len(paths) == 1 and is_run_dir(paths[0]):
        doc = build_run_report(paths[0], features=features, checkpoint=checkpoint, device=device, top=top,
                               tsne_samples=tsne_samples)
        kind = "run"
    else:
        rows = collect_runs(_collection(paths))
        doc = build_sweep_report(rows, title="noisyfer report: runs compared",
                                 source=", ".join(str(p) for p in paths), features=features, device=device,
                                 tsne_samples=tsne_samples)
        kind = "runs"
    write_html(doc, html_path)
    md_path = write_markdown(doc, html_path.with_suffix(".md"))
    return ReportFiles(html=html_path, markdown=md_path, kind=kind, results=results)
