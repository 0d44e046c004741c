"""The report of one run: results, curves, per-class accuracy, noise detection, relabel inconsistency,
label-distribution fidelity, feature analyses (compactness, t-SNE, distances, CAMs) and suspects."""

from __future__ import annotations

import numpy as np

from ..analysis.embedding import tsne
from ..analysis.relabel_targets import relabel_target_counts
from ..engine.summary import metric_label
from ..errors import NoisyferError
from ..papers import SHORT
from .analyses import RunAnalyses
from .document import Document, Figure, Section, Table, progress
from .figures import (accuracy_curves_figure, confusion_figure, memorization_figure, per_class_figure, png_bytes,
                      relabel_activity_figure, score_histogram_figure)
from .figures_images import (cam_grid_figure, distance_bars_figure, relabel_history_figure, sample_grid_figure,
                             suspect_caption, tsne_figure)

__all__ = ["SUMMARY_ROWS", "build_run_report", "compactness_table", "detection_table"]

#: The summary rows of a run report, labelled as in the terminal (:data:`noisyfer.engine.summary.METRIC_LABELS`).
SUMMARY_ROWS = ("accuracy_best", "accuracy_last", "accuracy_last5", "balanced_accuracy_best", "balanced_accuracy_last",
                "train_acc_given_last", "train_acc_true_last", "noisy_memorized_last", "noisy_corrected_last")


def _reference(a: RunAnalyses) -> str | None:
    """What the run's reference labels are called: ``true`` (simulator), ``original`` (before noisyfer's
    injected noise), None (real data as given: nothing is known to be right or wrong)."""
    true, what = a.truth
    if true is None:
        return None
    return "true" if "true_label" in (what or "") else "original"


def _figure(section: Section, fig, title: str, name: str, caption: str | None = None) -> None:
    section.figures.append(Figure(title=title, png=png_bytes(fig), name=name, caption=caption))


def _pct(value) -> str | None:
    """A fraction as a percentage with two decimals, ``None`` (n/a) when absent."""
    return None if value is None or not np.isfinite(value) else f"{100 * float(value):.2f}"


def detection_table(detection, title: str = "Noise detection") -> Table:
    rows = [(q, round(v, 4) if isinstance(v, float) and np.isfinite(v) else (None if isinstance(v, float) else v))
            for q, v in detection.rows()]
    return Table(title, ("quantity", "value"), rows, note=f"truth: {detection.reference}. " + " ".join(detection.notes))


def compactness_table(results: dict, class_names, title: str) -> Table:
    """Paper 000 Table 2 layout: rows = runs, columns = classes, cells mean ± std distance."""
    header = ("run", *class_names, "mean / center separation")
    rows = []
    for label, c in results.items():
        cells = [f"{m:.2f} ± {s:.2f}" if np.isfinite(m) else None for m, s in zip(c.mean, c.std)]
        rows.append((label, *cells, None if not np.isfinite(c.ratio) else round(c.ratio, 3)))
    return Table(title, header, rows, note="Euclidean distance of test features to their class's mean feature "
                 "(lower = more compact). Raw distances depend on the feature scale of a method; the last column "
                 "divides the mean distance by the mean distance between class centers (scale-free).")


def _header(doc: Document, a: RunAnalyses) -> None:
    s, run = a.run.summary, a.run
    noise = s.get("noise") or {}
    realized = noise.get("realized_rate")
    doc.subtitle = (f"method {run.method} | data {s.get('data', '?')} | backbone {s.get('backbone', '?')} | noise "
                    f"{noise.get('kind', '?')} {noise.get('rate', '?')} (realized "
                    f"{'n/a' if realized is None else f'{realized:.4f}'}) | seed {s.get('seed', '?')} | "
                    f"{s.get('epochs_done', 0)}/{s.get('epochs', '?')} epochs, {run.status}")


def _results(doc: Document, a: RunAnalyses) -> None:
    s = a.run.summary
    section = doc.section("Results")
    if not s:
        section.note("n/a: the run has no summary.json yet (no epoch finished)")
        return
    rows = [(metric_label(key, s), _pct(s.get(key))) for key in SUMMARY_ROWS if key in s or key.startswith(("acc", "bal"))]
    rows.insert(4, ("best epoch", s.get("best_epoch")))
    section.tables.append(Table("Headline numbers (%), each labelled with the papers that report it",
                                ("metric", "value"), rows))
    names = a.run.class_names
    best, last = s.get("per_class_accuracy_best", []), s.get("per_class_accuracy_last", [])
    section.tables.append(Table("Per-class test accuracy (%)",
                                ("class", f"best epoch ({s.get('best_epoch')})", "last epoch"),
                                [(n, _pct(b), _pct(z)) for n, b, z in zip(names, best, last)],
                                note=f"balanced accuracy (mean over classes): best epoch "
                                     f"{_pct(s.get('balanced_accuracy_at_best_epoch')) or 'n/a'} %, last "
                                     f"{_pct(s.get('balanced_accuracy_last')) or 'n/a'} %"))
    curves = a.curves
    _figure(section, accuracy_curves_figure(curves, title=f"{a.run.method}: accuracy per epoch",
                                            reference=_reference(a) or "true"), "Accuracy per epoch",
            "accuracy_curves")
    _figure(section, memorization_figure({a.run.method: curves}, title="Memorization of the wrong training labels"),
            "Memorization", "memorization",
            f"Among training samples whose given label differs from the {_reference(a)} label: share predicted as "
            f"the given label (memorized) and as the {_reference(a)} label (corrected), during each training epoch."
            if _reference(a) else "n/a: which training labels are wrong is unknown for this data (no simulator, "
            "no noise injected by noisyfer), so memorization cannot be measured.")
    _figure(section, per_class_figure(names, {"best epoch": best, "last epoch": last}, title="Per-class test accuracy"),
            "Per-class accuracy", "per_class")
    if s.get("confusion_last"):
        _figure(section, confusion_figure(s["confusion_last"], names, title="Confusion matrix, last epoch (test)"),
                "Confusion matrix", "confusion_last")


def _detection(doc: Document, a: RunAnalyses) -> None:
    section = doc.section("Noise detection")
    detection = a.detection
    if detection is None:
        section.note(f"n/a: {a.why_not('detection')}")
        return
    section.tables.append(detection_table(detection))
    score = a.record.get("clean_score")
    if score is not None:
        fig = score_histogram_figure(score, a.noisy, title=f"{a.run.method}: clean_score of training samples")
        _figure(section, fig, "Per-sample score", "clean_score")


def _relabel(doc: Document, a: RunAnalyses) -> None:
    section = doc.section("Relabel inconsistency")
    report = a.relabel
    if report is None:
        section.note(f"n/a: {a.why_not('relabel')}")
        return
    section.blocks.append(report.format())
    epochs = (report.epochs or list(range(report.num_rows)))[1:]
    series = {a.run.method: (epochs, report.changes_per_epoch, report.returns_per_epoch)}
    _figure(section, relabel_activity_figure(series, title="Relabels per epoch"), "Relabels per epoch", "relabels")
    chosen, how = a.chosen_training_samples(6)
    counts = relabel_target_counts(a.history[:, chosen], num_classes=a.run.num_classes)
    true = a.truth[0]
    _figure(section, relabel_history_figure(a.run.train.images[chosen], counts, class_names=a.run.class_names,
                                            given=a.run.given_labels[chosen],
                                            true=None if true is None else true[chosen], reference=_reference(a) or "true",
                                            title=f"{SHORT['000']}, Fig. 3: {how}"), "Relabel histories", "relabel_history")


def _fidelity(doc: Document, a: RunAnalyses) -> None:
    section = doc.section("Label-distribution fidelity")
    result = a.fidelity
    if result is None:
        section.note(f"n/a: {a.why_not('fidelity')}")
        return
    labels = {"num_samples": "training samples", "num_valid": "with a learned distribution",
              "kl_mean": "mean KL(true‖learned), nats", "kl_median": "median KL", "tv_mean": "mean total variation",
              "top1_agreement": "same top class", "kl_uniform_mean": "mean KL(true‖uniform), reference"}
    section.tables.append(Table("Learned label distributions against the true ones", ("quantity", "value"),
                                [(labels[k], round(v, 4) if isinstance(v, float) else v) for k, v in result.items()]))


def _features(doc: Document, a: RunAnalyses, *, tsne_samples: int) -> None:
    section = doc.section("Features and class activation maps")
    try:
        model = a.model
    except (NoisyferError, RuntimeError) as exc:  # e.g. weights of an older version of the method
        section.note(f"n/a: the run's model cannot be rebuilt here ({exc})")
        return
    names, run = a.run.class_names, a.run
    section.note(f"weights: {model.checkpoint.name} (epoch {model.epoch}); features = pooled last feature map")
    section.tables.append(compactness_table({run.method: a.compactness}, names,
                                            f"Cluster compactness of test features ({SHORT['000']}, Table 2)"))
    points, idx = tsne(a.test_outputs[0], seed=0, max_samples=tsne_samples)
    _figure(section, tsne_figure({run.method: (points, run.test.labels[idx])}, class_names=names,
                                 title=f"t-SNE of test features ({SHORT['000']}, Fig. 5)"), "t-SNE", "tsne")
    chosen, how = a.chosen_training_samples(6)
    relabeled = list(a.history[-1, chosen]) if a.history is not None else [None] * len(chosen)
    true = a.truth[0]
    _figure(section, distance_bars_figure(run.train.images[chosen], {run.method: a.distances_to_centers(chosen)},
                                          class_names=names, given=run.given_labels[chosen],
                                          true=None if true is None else true[chosen], reference=_reference(a) or "true",
                                          relabeled={run.method: relabeled},
                                          title=f"Distances to class centers ({SHORT['000']}, Fig. 4): {how}"),
            "Distance to class centers", "distances")
    from ..analysis.features import class_activation_maps, grad_cams

    faces = a.chosen_test_faces()
    images = run.test.images[faces]
    logits = a.test_outputs[1][faces]
    rows = [f"label {names[run.test.labels[i]]}\npred {names[p]}" for i, p in zip(faces, logits.argmax(1))]
    cam = class_activation_maps(model, images)
    _figure(section, cam_grid_figure(images, {"CAM (fc)": cam, "Grad-CAM": grad_cams(model, images)}, row_labels=rows,
                                     title=f"Class activation maps of the predicted class ({SHORT['001']}, Fig. 4)"),
            "CAM and Grad-CAM", "cams",
            None if cam is not None else "CAM n/a: the method's prediction is not its fc classifier on pooled features")
    moved = a.relabeled_samples(6)
    if len(moved):
        imgs = run.train.images[moved]
        columns = {"given label": grad_cams(model, imgs, run.given_labels[moved]),
                   "relabeled to": grad_cams(model, imgs, a.history[-1, moved])}
        if true is not None:
            columns[f"{_reference(a)} class"] = grad_cams(model, imgs, true[moved])
        rows = [f"given {names[g]}\nnow {names[n]}" for g, n in zip(run.given_labels[moved], a.history[-1, moved])]
        _figure(section, cam_grid_figure(imgs, columns, row_labels=rows,
                                         title=f"Grad-CAM of relabeled faces per label ({SHORT['000']}, Fig. 6b)"),
                "Grad-CAM of relabeled faces", "gradcam_relabeled")


def suspects_section(doc: Document, a: RunAnalyses, *, top: int) -> None:
    section = doc.section("Suspected mislabels")
    try:
        found = a.suspects(top)
    except (NoisyferError, RuntimeError) as exc:  # e.g. weights of an older version of the method
        section.note(f"n/a: the run's model cannot be rebuilt here ({exc})")
        return
    names = a.run.class_names
    section.note("Training samples ranked by 1 - p(given label) under the model (best weights, no augmentation); "
                 "suggested = the most probable other class.")
    if "mislabeled" in found:
        section.note(f"precision of the top {len(found['indices'])} against the known flips: "
                     f"{found['mislabeled'].mean():.3f} (share of all training labels that are wrong: "
                     f"{a.noisy.mean():.3f})")
    captions = [suspect_caption(i, names[g], names[s], sc) for i, g, s, sc in
                zip(found["indices"], found["given"], found["suggested"], found["score"])]
    _figure(section, sample_grid_figure(a.run.train.images[found["indices"]], captions,
                                        title="Suspected mislabels (given -> suggested, score; red = truly mislabeled)",
                                        highlight=found.get("mislabeled")), "Suspected mislabels", "suspects")


def build_run_report(run_dir, *, features: bool = True, checkpoint: str = "best", device: str | None = "cpu",
                     top: int = 24, tsne_samples: int = 800) -> Document:
    """The :class:`Document` of one run (``features=False`` skips everything that loads the weights)."""
    a = RunAnalyses(run_dir, checkpoint=checkpoint, device=device)
    doc = Document(title=f"noisyfer run report: {a.run.path.name}")
    phases = [("header", lambda: _header(doc, a)), ("results", lambda: _results(doc, a)),
              ("noise detection", lambda: _detection(doc, a)), ("relabel inconsistency", lambda: _relabel(doc, a)),
              ("label-distribution fidelity", lambda: _fidelity(doc, a))]
    if features:
        phases += [("features: compactness, t-SNE, distances, CAMs",
                    lambda: _features(doc, a, tsne_samples=tsne_samples)),
                   ("suspected mislabels", lambda: suspects_section(doc, a, top=top))]
    for step, (name, build) in enumerate(phases, 1):
        with progress(f"{step}/{len(phases)} {name}"):
            build()
    return doc
