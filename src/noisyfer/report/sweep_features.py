"""Feature analyses compared across the methods of a sweep, one noise setting at a time (the run of
each method with the lowest seed): compactness (paper 000 Table 2), t-SNE (Fig. 5), distances of
chosen training samples to the class centers (Fig. 4), and CAM / Grad-CAM of chosen test faces
(paper 000 Fig. 6a, paper 001 Fig. 4)."""

from __future__ import annotations

from ..papers import SHORT
from ..analysis.embedding import tsne
from ..errors import NoisyferError
from .document import Document, Figure
from .figures import png_bytes
from .figures_images import cam_grid_figure, distance_bars_figure, tsne_figure
from .run_report import compactness_table

__all__ = ["features_sections"]


def _loaded(g, i: int, j: int, *, device, problems: list[str]):
    rep = g.representative(i, j)
    if rep is None:
        return None
    a = g.analyses(rep, device=device)
    try:
        _ = a.compactness  # builds the model and the test features once, here where a failure is caught
    except (NoisyferError, RuntimeError) as exc:  # e.g. weights of an older version of the method
        problems.append(f"{g.row_labels[i]}: n/a, the model cannot be rebuilt here ({exc})")
        return None
    return a


def features_sections(doc: Document, g, *, class_names, device, tsne_samples: int) -> None:
    from ..analysis.features import class_activation_maps, grad_cams

    for j, column in enumerate(g.columns):
        section = doc.section(f"Features, noise {column}")
        problems: list[str] = []
        runs = {}
        for i, label in enumerate(g.row_labels):
            a = _loaded(g, i, j, device=device, problems=problems)
            if a is not None:
                runs[label] = a
        for text in problems:
            section.note(text)
        if not runs:
            section.note("n/a: no finished run whose model can be rebuilt")
            continue
        section.note("One run per method (its lowest seed), best-epoch weights; features = pooled last feature map.")
        section.tables.append(compactness_table({k: a.compactness for k, a in runs.items()}, class_names,
                                                f"Cluster compactness of test features ({SHORT['000']}, Table 2)"))
        panels = {}
        for label, a in runs.items():
            points, idx = tsne(a.test_outputs[0], seed=0, max_samples=tsne_samples)
            panels[label] = (points, a.run.test.labels[idx])
        section.figures.append(Figure(f"t-SNE of test features ({SHORT['000']}, Fig. 5)", png_bytes(
            tsne_figure(panels, class_names=class_names, title=f"t-SNE of test features, noise {column}")),
            name=f"tsne_{j}"))
        chooser = next((a for a in runs.values() if a.history is not None), next(iter(runs.values())))
        chosen, how = chooser.chosen_training_samples(5)
        first = next(iter(runs.values()))
        sizes = {len(a.run.given_labels) for a in runs.values()}
        if len(sizes) == 1:
            distances = {label: a.distances_to_centers(chosen) for label, a in runs.items()}
            relabeled = {label: (list(a.history[-1, chosen]) if a.history is not None else [None] * len(chosen))
                         for label, a in runs.items()}
            true = chooser.truth[0]
            fig = distance_bars_figure(chooser.run.train.images[chosen], distances, class_names=class_names,
                                       given=chooser.run.given_labels[chosen],
                                       true=None if true is None else true[chosen], relabeled=relabeled,
                                       title=f"Distances to class centers ({SHORT['000']}, Fig. 4), noise {column}: {how}")
            section.figures.append(Figure("Distances of chosen training samples to the class centers", png_bytes(fig),
                                          name=f"distances_{j}"))
        else:
            section.note("distance bars n/a: the runs have training sets of different sizes")
        faces = first.chosen_test_faces()
        images = first.run.test.images[faces]
        columns = {}
        for label, a in runs.items():
            if len(a.run.test.images) != len(first.run.test.images):
                continue
            columns[f"CAM\n{label}"] = class_activation_maps(a.model, images)
            columns[f"Grad-CAM\n{label}"] = grad_cams(a.model, images)
        rows = [f"{class_names[c]}" for c in first.run.test.labels[faces]]
        section.figures.append(Figure("CAM and Grad-CAM of the predicted class", png_bytes(cam_grid_figure(
            images, columns, row_labels=rows, title=f"Class activation maps, noise {column} (n/a: the method's "
            "prediction is not its fc on pooled features)")), name=f"cams_{j}"))
