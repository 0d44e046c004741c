"""Figures with faces: CAM / Grad-CAM grids, distance-to-center bars, relabel histories, sample grids,
and t-SNE scatter plots of features (papers 000 and 001).

Images are uint8 (N, H, W, 3); maps are (N, h, w) arrays interpolated linearly to the image size, each
cell over the pixel its receptive field is centred on (:func:`upsample_maps`), and drawn over it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..models.cam import map_stride
from .figures import plt

__all__ = ["cam_grid_figure", "distance_bars_figure", "relabel_history_figure", "sample_grid_figure", "suspect_caption",
           "tsne_figure", "upsample_maps"]


def _cell_coordinates(image_side: int, map_side: int) -> np.ndarray:
    """Fractional map index under each pixel: cell ``j`` of a ResNet map looks at pixel ``stride * j``
    (its receptive field's centre), so pixel ``p`` lies at ``p / stride``; a map of unknown stride
    falls back to the centre-to-centre rule of ``align_corners=False``."""
    stride = map_stride(image_side, map_side)
    pixels = np.arange(image_side, dtype=np.float64)
    u = pixels / stride if stride is not None else (pixels + 0.5) * map_side / image_side - 0.5
    return np.clip(u, 0.0, map_side - 1)


def _interpolation(image_side: int, map_side: int) -> np.ndarray:
    """(image_side, map_side) linear-interpolation weights along one axis."""
    u = _cell_coordinates(image_side, map_side)
    low = np.floor(u).astype(int)
    high = np.minimum(low + 1, map_side - 1)
    weights = np.zeros((image_side, map_side))
    rows = np.arange(image_side)
    np.add.at(weights, (rows, low), 1.0 - (u - low))
    np.add.at(weights, (rows, high), u - low)
    return weights


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) maps -> (N, H, W) over the image, each cell placed over the pixel it looks at, then
    scaled to [0, 1] per map.

    A plain ``align_corners=False`` resize puts cell ``j`` of an ``h``-cell map at the centre of the
    ``j``-th ``H / h`` band, half a cell further right and down than the pixel the cell's receptive
    field is centred on (16 px at 224 px with ResNet-18; at 32 px with a 2x2 map, a peak over the
    face's centre would be drawn in the bottom-right quarter).
    """
    maps = np.asarray(maps, dtype=np.float64)
    up = np.einsum("yi,nij,xj->nyx", _interpolation(size[0], maps.shape[1]), maps,
                   _interpolation(size[1], maps.shape[2]))
    low = up.reshape(len(up), -1).min(1)[:, None, None]
    high = up.reshape(len(up), -1).max(1)[:, None, None]
    return ((up - low) / np.maximum(high - low, 1e-12)).astype(np.float32)


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def cam_grid_figure(images: np.ndarray, columns: Mapping[str, np.ndarray | None], *, row_labels: Sequence[str],
                    title: str):
    """Rows = faces; first column the face, then one column per map kind / method (``None`` = n/a)."""
    n, size = len(images), images.shape[1:3]
    cols = 1 + len(columns)
    fig, axes = plt.subplots(n, cols, figsize=(1.7 * cols, 1.75 * n + 0.5), squeeze=False)
    upsampled = {k: (None if m is None else upsample_maps(m, size)) for k, m in columns.items()}
    for i in range(n):
        axes[i, 0].imshow(images[i])
        axes[i, 0].set_ylabel(row_labels[i], fontsize=7)
        for j, maps in enumerate(upsampled.values(), start=1):
            ax = axes[i, j]
            if maps is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.imshow(images[i])
                ax.imshow(maps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        for ax in axes[i]:
            _off(ax)
    for j, name in enumerate(["face", *columns]):
        axes[0, j].set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def distance_bars_figure(images: np.ndarray, distances: Mapping[str, np.ndarray], *, class_names: Sequence[str],
                         given: Sequence[int], true: Sequence[int] | None, reference: str = "true",
                         relabeled: Mapping[str, Sequence[int | None]],
                         title: str):
    """Paper 000 Fig. 4: per chosen sample, bars of its feature's distance to every class center.

    ``distances``: column label (a run) -> (S, C); ``relabeled``: column label -> the run's label for
    each sample (``None`` when the run does not relabel). Colours: green = true class, orange = given
    (noisy) label, gold = the run's relabel, blue = other classes.
    """
    s, cols = len(images), 1 + len(distances)
    fig, axes = plt.subplots(s, cols, figsize=(1.8 + 2.6 * len(distances), 1.9 * s + 0.7), squeeze=False,
                             gridspec_kw={"width_ratios": [0.7] + [1.0] * len(distances)})
    x = np.arange(len(class_names))
    for i in range(s):
        axes[i, 0].imshow(images[i])
        truth = None if true is None else int(true[i])
        label = f"given: {class_names[int(given[i])]}" + ("" if truth is None else f"\n{reference}: {class_names[truth]}")
        axes[i, 0].set_xlabel(label, fontsize=7)
        _off(axes[i, 0])
        for j, (name, dist) in enumerate(distances.items(), start=1):
            colors = ["C0"] * len(class_names)
            colors[int(given[i])] = "C1"
            new = relabeled.get(name, [None] * s)[i]
            if new is not None and int(new) != int(given[i]):
                colors[int(new)] = "gold"
            if truth is not None:
                colors[truth] = "C2"
            ax = axes[i, j]
            ax.bar(x, dist[i], color=colors)
            ax.set_xticks(x, [c[:3] for c in class_names], fontsize=6)
            ax.tick_params(axis="y", labelsize=6)
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 1:
                ax.set_ylabel("distance", fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("C2", "C1", "gold", "C0")]
    names = [f"{reference} class", "given label", "relabeled to", "other"]
    if true is None:  # no reference labels: no colour, no legend entry for them
        handles, names = handles[1:], names[1:]
    fig.legend(handles, names, loc="lower center", ncol=len(names),
               fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def relabel_history_figure(images: np.ndarray, counts: np.ndarray, *, class_names: Sequence[str],
                           given: Sequence[int], true: Sequence[int] | None, title: str, reference: str = "true"):
    """Paper 000 Fig. 3: faces relabeled back and forth, with how many times each went to each class."""
    s = len(images)
    fig, axes = plt.subplots(s, 2, figsize=(6.0, 1.3 * s + 0.6), squeeze=False, gridspec_kw={"width_ratios": [1, 3]})
    y = np.arange(len(class_names))
    for i in range(s):
        axes[i, 0].imshow(images[i])
        _off(axes[i, 0])
        colors = ["C0"] * len(class_names)
        if true is not None:
            colors[int(true[i])] = "C2"
        ax = axes[i, 1]
        ax.barh(y, counts[i], color=colors)
        ax.set_yticks(y, class_names, fontsize=6)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=6)
        truth = "" if true is None else f", {reference} {class_names[int(true[i])]}"
        ax.set_title(f"given {class_names[int(given[i])]}{truth}", fontsize=7)
    axes[-1, 1].set_xlabel("times relabeled to the class" + ("" if true is None else f" (green = {reference} class)"),
                           fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def suspect_caption(index: int, given: str, suggested: str, score: float) -> str:
    """Caption of a suspected mislabel in a sample grid: ``#index  score`` over ``given -> suggested``,
    class names in full (at most two per line, so a 1.45-inch cell holds "happiness -> surprise")."""
    return f"#{index}  {score:.3f}\n{given} -> {suggested}"


def sample_grid_figure(images: np.ndarray, captions: Sequence[str], *, title: str, columns: int = 8,
                       highlight: Sequence[bool] | None = None):
    """A grid of faces with a caption each (a red frame where ``highlight`` is true)."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.95 * rows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        _off(ax)
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(images[k])
        ax.set_xlabel(captions[k], fontsize=7.5)
        if highlight is not None and highlight[k]:
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2.5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tsne_figure(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], *, class_names: Sequence[str], title: str):
    """t-SNE scatter plots, one panel per run (``panels``: label -> (points (N, 2), class labels))."""
    k = len(panels)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.9), squeeze=False)
    for ax, (name, (points, labels)) in zip(axes[0], panels.items()):
        for c, cname in enumerate(class_names):
            mask = labels == c
            if mask.any():
                ax.scatter(points[mask, 0], points[mask, 1], s=5, color=f"C{c % 10}", label=cname, alpha=0.75)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
