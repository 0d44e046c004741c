"""``noisyfer suspects``: a CSV of the training samples most likely mislabeled, and a thumbnail grid."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.rundir import atomic_write_bytes
from ..errors import UserError
from .analyses import RunAnalyses
from .figures import png_bytes
from .figures_images import sample_grid_figure, suspect_caption

__all__ = ["SuspectsExport", "export_suspects"]


@dataclass
class SuspectsExport:
    csv: Path
    grid: Path
    rows: list[dict]
    #: Share of the listed samples that are truly mislabeled (None when the truth is unknown).
    precision: float | None
    #: Share of all training labels that are wrong (what a random pick would score).
    base_rate: float | None
    reference: str | None
    #: Among the listed samples that are truly mislabeled, the share whose suggested label is the true one.
    suggestion_accuracy: float | None = None
    #: Faces drawn in the grid (the first ``grid_max`` of the listed samples).
    drawn: int = 0


def export_suspects(run_dir, *, top: int = 50, out: str | Path | None = None, checkpoint: str = "best",
                    device: str | None = None, grid_max: int = 200) -> SuspectsExport:
    """Rank the run's training samples by suspicion and write ``out`` (CSV) and its ``.png`` grid.

    CSV columns: ``rank, index, path, given_label, given_class, suggested_label, suggested_class,
    score`` and, when the truth is known (simulator, injected noise), ``true_label, true_class,
    mislabeled``. ``path`` is the dataset's ``path`` column (``n/a`` for simulated faces).
    """
    if top < 1:
        raise UserError(f"--top: expected at least 1, got {top}")
    a = RunAnalyses(run_dir, checkpoint=checkpoint, device=device)
    found = a.suspects(top)
    names = a.run.class_names
    paths = a.run.train.columns.get("path")
    rows = []
    for rank, (i, g, s, sc) in enumerate(zip(found["indices"], found["given"], found["suggested"], found["score"]), 1):
        row = {"rank": rank, "index": int(i), "path": str(paths[i]) if paths is not None else "n/a",
               "given_label": int(g), "given_class": names[g], "suggested_label": int(s),
               "suggested_class": names[s], "score": round(float(sc), 6)}
        if "true" in found:
            t = int(found["true"][rank - 1])
            row.update({"true_label": t, "true_class": names[t], "mislabeled": bool(found["mislabeled"][rank - 1])})
        rows.append(row)
    csv_path = Path(out) if out else a.run.path / "suspects.csv"
    if csv_path.suffix.lower() != ".csv":
        raise UserError(f"--out: expected a .csv file name, got {csv_path}")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    shown = found["indices"][:grid_max]
    captions = [suspect_caption(r["index"], r["given_class"], r["suggested_class"], r["score"])
                for r in rows[:grid_max]]
    highlight = found["mislabeled"][:grid_max] if "mislabeled" in found else None
    title = f"{a.run.path.name}: top {len(shown)} suspected mislabels (given -> suggested, score)"
    if highlight is not None:
        title += "; red = truly mislabeled"
    fig = sample_grid_figure(a.run.train.images[shown], captions, highlight=highlight, title=title)
    grid_path = csv_path.with_suffix(".png")
    atomic_write_bytes(grid_path, png_bytes(fig))
    precision = float(np.mean(found["mislabeled"])) if "mislabeled" in found else None
    base = float(a.noisy.mean()) if a.noisy is not None else None
    suggestion = None
    if "mislabeled" in found and found["mislabeled"].any():
        wrong = found["mislabeled"]
        suggestion = float((found["suggested"][wrong] == found["true"][wrong]).mean())
    return SuspectsExport(csv=csv_path, grid=grid_path, rows=rows, precision=precision, base_rate=base,
                          reference=a.truth[1], suggestion_accuracy=suggestion, drawn=len(shown))
