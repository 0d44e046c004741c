"""``noisyfer suspects``: the training samples most likely mislabeled (CSV + thumbnail grid), how many
labels are wrong and which way (cleanlab's estimates), and optionally the cleaned dataset.

Where the probabilities come from (see :mod:`noisyfer.analysis.scores` for the scores):

* a run directory: the run's model on its own training images (*in-sample*);
* a cross-validation directory (``noisyfer suspects --cv K ...``): every sample scored by the fold
  model that did not train on it (*out-of-fold*, see :mod:`noisyfer.sweep.crossval`);
* ``probs_file``: an outside model's (N, C) probabilities for the run's training samples, in order.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analysis.label_issues import LabelIssues, estimate_label_issues
from ..analysis.rundata import RunData
from ..analysis.scores import check_probs, rank_suspects, score_samples, suggested_labels
from ..engine.rundir import atomic_write_bytes, dumps
from ..errors import UserError
from .figures import png_bytes
from .figures_images import sample_grid_figure, suspect_caption

__all__ = ["SuspectsExport", "export_suspects", "is_crossval_dir", "load_probs_file"]


@dataclass
class SuspectsExport:
    csv: Path
    grid: Path | None
    rows: list[dict]
    #: Share of the listed samples that are truly mislabeled (None when the truth is unknown).
    precision: float | None
    #: Share of all training labels that are wrong (what a random pick would score).
    base_rate: float | None
    reference: str | None
    #: Among the listed samples that are truly mislabeled, the share whose suggested label is the true one.
    suggestion_accuracy: float | None = None
    #: Where the probabilities came from (in-sample, out-of-fold, a file).
    origin: str = ""
    score: str = "self_confidence"
    #: cleanlab's estimates on the probabilities.
    estimates: LabelIssues | None = None
    class_names: tuple[str, ...] = ()
    #: ``label_issues.json``-style summary written beside the CSV (``<csv stem>.json``).
    summary: Path | None = None
    clean_out: Path | None = None
    #: Share of all truly mislabeled samples that made the list (None when the truth is unknown).
    recall: float | None = None
    notes: list[str] = field(default_factory=list)
    #: Faces drawn in the grid (the first ``grid_max`` of the listed samples).
    drawn: int = 0


def is_crossval_dir(path) -> bool:
    """A directory made by ``noisyfer suspects --cv K`` (a sweep over ``data.fold``)."""
    from ..config import load_yaml

    spec = Path(path) / "sweep.yaml"
    if not spec.is_file():
        return False
    grid = (load_yaml(spec).get("grid") or {})
    return list(grid) == ["data.fold"]


def load_probs_file(path, *, num_samples: int, given) -> np.ndarray:
    """(N, C) probabilities from a ``.npy`` file, checked against the training split."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise UserError(f"--probs: expected a .npy file of shape ({num_samples}, C), got {path}")
    if not path.is_file():
        raise UserError(f"--probs: file not found: {path}")
    try:
        probs = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"--probs: {path}: not a numpy array file ({exc})") from None
    if probs.ndim != 2 or probs.shape[0] != num_samples:
        raise UserError(f"--probs: {path} has shape {probs.shape}; expected ({num_samples}, C), one row per "
                        "training sample in the dataset's order")
    return check_probs(probs, given=given, source=f"--probs {path}")[0]


def _source(path, *, checkpoint: str, device: str | None, probs_file):
    """``(run, given, probs, record, origin)`` of a run or cross-validation directory."""
    from ..sweep.crossval import collect_oof, write_oof

    path = Path(path)
    if is_crossval_dir(path):
        oof = collect_oof(path)
        write_oof(oof, path)
        run = RunData(oof.first_run)
        return run, oof.given, oof.probs, {}, f"out-of-fold ({len(oof.runs)} folds, {path})"
    run = RunData(path)
    given = run.given_labels
    record = run.sample_record()
    if probs_file is not None:
        return run, given, None, record, ""
    from .analyses import RunAnalyses

    probs = RunAnalyses(path, checkpoint=checkpoint, device=device).train_probs
    return run, given, probs, record, f"in-sample ({checkpoint} weights of {path} on its own training images)"


def export_suspects(source, *, top: int | None = None, out: str | Path | None = None, checkpoint: str = "best",
                    device: str | None = None, grid_max: int = 200, score: str = "self_confidence",
                    probs_file: str | Path | None = None, clean_out: str | Path | None = None,
                    clean: str = "remove") -> SuspectsExport:
    """Rank the training samples of ``source`` (run or cross-validation directory) by ``score`` and write
    ``out`` (CSV), its ``.png`` grid and its ``.json`` summary (cleanlab's estimates).

    ``top`` defaults to cleanlab's estimated number of label issues. CSV columns: ``rank, index, path,
    given_label, given_class, suggested_label, suggested_class, score, cleanlab_issue`` and, when the
    truth is known (simulator, injected noise), ``true_label, true_class, mislabeled``. ``path`` is
    the dataset's ``path`` column (``n/a`` for simulated faces).
    """
    if top is not None and top < 1:
        raise UserError(f"--top: expected at least 1, got {top}")
    run, given, probs, record, origin = _source(source, checkpoint=checkpoint, device=device, probs_file=probs_file)
    if probs_file is not None:
        probs = load_probs_file(probs_file, num_samples=given.size, given=given)
        origin = f"{probs_file} (outside model)"
    if score == "method" and is_crossval_dir(source):
        raise UserError("--score method: the method's signal comes from a run on every sample; give a run "
                        "directory, not a cross-validation directory")
    if score == "method" and "clean_score" not in record:
        raise UserError(f"--score method: method '{run.method}' records no per-sample signal (its paper defines "
                        "none); use --score self_confidence or margin")
    names = run.class_names
    estimates = estimate_label_issues(labels=given, probs=probs, source=origin)
    suspicion = score_samples(score, probs=probs, given=given, clean_score=record.get("clean_score"))
    count = top if top is not None else estimates.num_issues
    order = rank_suspects(suspicion, top=min(count, given.size)) if count else np.zeros(0, dtype=np.int64)
    suggested = suggested_labels(probs, given=given)
    true, reference = run.truth()
    noisy = None if true is None else given != true
    paths = run.train.columns.get("path")
    rows = []
    for rank, i in enumerate(order, 1):
        g, s = int(given[i]), int(suggested[i])
        row = {"rank": rank, "index": int(i), "path": str(paths[i]) if paths is not None else "n/a",
               "given_label": g, "given_class": names[g], "suggested_label": s, "suggested_class": names[s],
               "score": round(float(suspicion[i]), 6), "cleanlab_issue": bool(estimates.issues[i])}
        if noisy is not None:
            row.update({"true_label": int(true[i]), "true_class": names[int(true[i])], "mislabeled": bool(noisy[i])})
        rows.append(row)
    csv_path = Path(out) if out else Path(source) / "suspects.csv"
    if csv_path.suffix.lower() != ".csv":
        raise UserError(f"--out: expected a .csv file name, got {csv_path}")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["rank", "index", "path", "given_label", "given_class", "suggested_label", "suggested_class", "score",
              "cleanlab_issue"] + (["true_label", "true_class", "mislabeled"] if noisy is not None else [])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    grid_path = None
    if rows:
        shown = order[:grid_max]
        captions = [suspect_caption(r["index"], r["given_class"], r["suggested_class"], r["score"])
                    for r in rows[:grid_max]]
        highlight = noisy[shown] if noisy is not None else None
        title = f"{Path(source).name}: top {len(shown)} suspected mislabels (given -> suggested, {score})"
        if highlight is not None:
            title += "; red = truly mislabeled"
        fig = sample_grid_figure(run.train.images[shown], captions, highlight=highlight, title=title)
        grid_path = csv_path.with_suffix(".png")
        atomic_write_bytes(grid_path, png_bytes(fig))
    result = SuspectsExport(csv=csv_path, grid=grid_path, rows=rows, precision=None, base_rate=None,
                            reference=reference, origin=origin, score=score, estimates=estimates, class_names=names,
                            drawn=min(len(rows), grid_max))
    if noisy is not None:
        result.base_rate = float(noisy.mean())
        if rows:
            result.precision = float(noisy[order].mean())
            wrong = order[noisy[order]]
            if wrong.size:
                result.suggestion_accuracy = float((suggested[wrong] == true[wrong]).mean())
        if noisy.any():
            result.recall = float(noisy[order].sum() / noisy.sum())
    if clean_out is not None:
        from .clean import write_clean_dataset

        result.clean_out = write_clean_dataset(
            train=run.train, test=run.test, given=given, suspects=order, suggested=suggested, out=clean_out,
            mode=clean, info={"source": str(source), "probabilities": origin, "score": score})
    summary = {"source": str(source), "probabilities": origin, "score": score, "listed": len(rows),
               "given_labels_sha256": _sha(given), **estimates.to_json(names)}
    if noisy is not None:
        summary.update({"reference": reference, "true_noise_rate": result.base_rate,
                        "true_num_issues": int(noisy.sum()), "precision": result.precision, "recall": result.recall})
    result.summary = csv_path.with_suffix(".json")
    atomic_write_bytes(result.summary, (dumps(summary, indent=2) + "\n").encode())
    return result


def _sha(labels) -> str:
    from ..noise import labels_sha256

    return labels_sha256(np.asarray(labels, dtype=np.int64))
