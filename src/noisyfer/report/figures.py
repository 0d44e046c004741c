"""Plots of numbers: confusion matrices, training curves, per-class bars, score histograms, sweep lines.

Every function takes plain arrays and returns a Matplotlib figure (headless ``Agg`` backend), titled,
with labelled axes and class names; :func:`png_bytes` renders one to PNG. Missing values (NaN,
``None``) are not drawn as zeros: they are left out, and bars without a value are marked "n/a".
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = [
    "accuracy_curves_figure", "confusion_figure", "confusion_grid_figure", "memorization_figure", "per_class_figure", "png_bytes",
    "relabel_activity_figure", "score_histogram_figure", "series_style", "sweep_lines_figure",
]

plt.rcParams.update({"figure.dpi": 100, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8,
                     "xtick.labelsize": 8, "ytick.labelsize": 8})


def png_bytes(fig, *, dpi: int = 150) -> bytes:
    """PNG of ``fig`` (then closed), at 150 dpi: the HTML report shows it at its pixel width up to the page's
    (a 8-inch figure spans the page), crisp."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buffer.getvalue()


#: Line colours of runs and methods in one plot: tab10, then the light halves of tab20's pairs, so 20
#: series never share a colour (a sweep of all methods draws 13); markers cycle too.
_SERIES_COLORS = [*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors[1::2]]
_SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def series_style(index: int) -> dict:
    """``color`` and ``marker`` of the ``index``-th series of a plot: distinct colours for 20 series."""
    return {"color": _SERIES_COLORS[index % len(_SERIES_COLORS)], "marker": _SERIES_MARKERS[index % len(_SERIES_MARKERS)]}


def _legend(ax, entries: int, *, inside: str = "best") -> None:
    """At ``inside`` within the axes for a few entries; beside them (outside the data) for many."""
    if entries > 6:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        ax.legend(loc=inside)


def _values(seq) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in seq], dtype=np.float64)


def _draw_confusion(ax, confusion, class_names: Sequence[str], title: str, *, annotate: bool = True):
    counts = np.asarray(confusion, dtype=np.int64)
    support = counts.sum(1, keepdims=True)
    share = np.where(support > 0, counts / np.maximum(support, 1), np.nan)
    image = ax.imshow(np.nan_to_num(share, nan=0.0), cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("labelled class")  # the test labels: ground truth only on the simulator
    ax.set_title(title)
    if annotate:
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                if np.isfinite(share[i, j]):
                    ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.55 else "black")
    return image


def confusion_figure(confusion, class_names: Sequence[str], *, title: str):
    """Row-normalised confusion matrix (colour) with the counts written in each cell."""
    size = 1.2 + 0.55 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = _draw_confusion(ax, confusion, class_names, title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the labelled class")
    return fig


def confusion_grid_figure(panels: Mapping[str, Sequence], class_names: Sequence[str], *, title: str):
    """One row-normalised confusion matrix per run (``panels``: label -> confusion counts)."""
    k = len(panels)
    size = 1.2 + 0.5 * len(class_names)
    fig, axes = plt.subplots(1, k, figsize=(size * k + 1.0, size + 0.6), squeeze=False)
    image = None
    for index, (ax, (label, confusion)) in enumerate(zip(axes[0], panels.items())):
        image = _draw_confusion(ax, confusion, class_names, label)
        if index:
            ax.set_ylabel("")
    fig.subplots_adjust(wspace=0.35)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), fraction=0.02, pad=0.02, label="share of the labelled class")
    fig.suptitle(title, fontsize=10)
    return fig


def accuracy_curves_figure(curves: Mapping[str, np.ndarray], *, title: str, reference: str = "true"):
    """Test accuracy, balanced accuracy and training accuracy against given / reference labels per epoch
    (``reference``: what the reference labels are, ``true`` on the simulator, ``original`` before injected noise)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    epochs = curves["epoch"]
    for key, label, style in (("test_accuracy", "test accuracy", "-"),
                              ("test_balanced_accuracy", "test balanced accuracy", "--"),
                              ("train_acc_given", "train: prediction = given (noisy) label", "-."),
                              ("train_acc_true", f"train: prediction = {reference} label", ":")):
        values = curves.get(key)
        if values is not None and np.isfinite(values).any():
            ax.plot(epochs, 100 * values, style, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def memorization_figure(series: Mapping[str, Mapping[str, np.ndarray]], *, title: str):
    """Share of mislabeled training samples memorized (solid) and corrected (dashed) per epoch, one
    colour per run (``series``: label -> curves from :func:`~noisyfer.analysis.memorization_curves`)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    entries = 0
    for index, (label, curves) in enumerate(series.items()):
        for key, style, what in (("noisy_memorized", "-", "memorized"), ("noisy_corrected", "--", "corrected")):
            values = curves.get(key)
            if values is not None and np.isfinite(values).any():
                ax.plot(curves["epoch"], 100 * values, style, markersize=3, label=f"{label}: {what}",
                        **series_style(index))
                entries += 1
    if not entries:
        ax.text(0.5, 0.5, "n/a: no ground truth for the training labels", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mislabeled training samples (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if entries:
        _legend(ax, entries)
    return fig


def per_class_figure(class_names: Sequence[str], groups: Mapping[str, Sequence], *, title: str,
                     ylabel: str = "accuracy (%)"):
    """Grouped bars of per-class accuracy (fractions; ``None`` = class absent, marked n/a)."""
    fig, ax = plt.subplots(figsize=(max(6.4, 1.0 * len(class_names) + 1), 3.8))
    width = 0.8 / max(len(groups), 1)
    x = np.arange(len(class_names))
    for index, (label, values) in enumerate(groups.items()):
        values = _values(values)
        pos = x - 0.4 + width * (index + 0.5)
        ok = np.isfinite(values)
        ax.bar(pos[ok], 100 * values[ok], width, label=label, color=series_style(index)["color"])
        for p in pos[~ok]:
            ax.text(p, 1, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, class_names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if len(groups) > 1:
        _legend(ax, len(groups), inside="lower right")
    return fig


def score_histogram_figure(score, noisy, *, title: str, xlabel: str = "clean_score (higher = cleaner)"):
    """Histograms of a per-sample score for correctly labelled and mislabeled training samples."""
    score = np.asarray(score, dtype=np.float64)
    noisy = np.asarray(noisy, dtype=bool)
    finite = np.isfinite(score)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bins = np.histogram_bin_edges(score[finite], bins=40) if finite.any() else 10
    ax.hist(score[finite & ~noisy], bins=bins, alpha=0.6, label=f"correct label ({int((finite & ~noisy).sum())})",
            color="C2")
    ax.hist(score[finite & noisy], bins=bins, alpha=0.6, label=f"mislabeled ({int((finite & noisy).sum())})",
            color="C3")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training samples")
    ax.set_title(title)
    ax.legend()
    return fig


def relabel_activity_figure(series: Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]], *, title: str):
    """Label changes (solid) and returns to an earlier label (dashed) per epoch, one colour per run
    (``series``: label -> (epochs, changes, returns))."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for index, (label, (epochs, changes, returns)) in enumerate(series.items()):
        style = series_style(index)
        ax.plot(epochs, changes, "-", markersize=3, label=f"{label}: relabeled", **style)
        ax.plot(epochs, returns, "--", color=style["color"], marker="x", markersize=3,
                label=f"{label}: back to an earlier label")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training samples")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, 2 * len(series))
    return fig


def sweep_lines_figure(lines: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]], *,
                       title: str, xlabel: str = "noise rate (%)", ylabel: str = "test accuracy (%)"):
    """Mean +- std (error bars) against the noise rate, one line per method
    (``lines``: label -> (rates, means, stds), fractions)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for index, (label, (rates, means, stds)) in enumerate(lines.items()):
        rates, means, stds = _values(rates), _values(means), _values(stds)
        ok = np.isfinite(means)
        ax.errorbar(100 * rates[ok], 100 * means[ok], yerr=100 * np.nan_to_num(stds[ok]), capsize=3,
                    label=label, **series_style(index))
    ticks = sorted({float(r) for _, (rates, _, _) in lines.items() for r in _values(rates)})
    if ticks:  # tick exactly the swept rates
        ax.set_xticks([100 * r for r in ticks], [f"{100 * r:g}" for r in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, len(lines))
    return fig
