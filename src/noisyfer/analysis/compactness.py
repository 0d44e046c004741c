"""Cluster compactness of learned features (paper 000, Table 2 and Fig. 4).

Paper 000 measures, per class, the mean +- standard deviation of the Euclidean distance between the
features of the samples of that class and the class center (lower = more compact), and draws, for a
few chosen ambiguous images, bars of the distance of its feature to every class center (Fig. 4). Here
the centers are the class means of the features (of the test split, by its clean labels, unless
other centers are given) and the standard deviation is the population one (``ddof=0``) of the
distances of one class.

Raw distances depend on the scale of the features, which differs between methods (a center loss
shrinks it), so :func:`compactness` also reports the scale-free ratio of the mean within-class
distance to the mean distance between class centers.

Examples
--------
>>> feats = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
>>> result = compactness(feats, np.array([0, 0, 1, 1]), num_classes=2)
>>> result.mean.tolist(), result.std.tolist()
([1.0, 2.0], [0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

__all__ = ["Compactness", "center_distances", "class_centers", "compactness"]


def _check(features, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise UserError(f"features must be (N, D), got shape {features.shape}")
    if labels is None:
        return features, None
    labels = np.asarray(labels)
    if labels.shape != (features.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"labels must be {features.shape[0]} integers, got shape {labels.shape} dtype {labels.dtype}")
    return features, labels.astype(np.int64)


def class_centers(features, labels, num_classes: int) -> np.ndarray:
    """(C, D) mean feature of each class; a class without samples has a row of NaN."""
    features, labels = _check(features, labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"labels must lie in 0..{num_classes - 1}")
    sums = np.zeros((num_classes, features.shape[1]))
    np.add.at(sums, labels, features)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def center_distances(features, centers) -> np.ndarray:
    """(N, C) Euclidean distance of every feature to every center (NaN for a NaN center)."""
    features, _ = _check(features)
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != features.shape[1]:
        raise UserError(f"centers must be (C, {features.shape[1]}), got shape {centers.shape}")
    diff = features[:, None, :] - centers[None, :, :]
    return np.sqrt(np.einsum("ncd,ncd->nc", diff, diff))


@dataclass
class Compactness:
    """Per-class distance statistics of features to their class centers.

    Attributes
    ----------
    mean, std
        (C,) mean and population standard deviation of the distances of each class's samples to its
        center; NaN for a class without samples.
    count
        (C,) samples per class.
    center_separation
        Mean Euclidean distance between the centers of the classes present.
    ratio
        Mean over classes of ``mean`` divided by ``center_separation`` (scale-free; lower = tighter).
    """

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    center_separation: float
    ratio: float

    def as_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "count": self.count.tolist(),
                "center_separation": self.center_separation, "ratio": self.ratio}


def compactness(features, labels, *, num_classes: int, centers=None) -> Compactness:
    """Compactness of ``features`` grouped by ``labels`` around ``centers`` (default: class means)."""
    features, labels = _check(features, labels)
    if centers is None:
        centers = class_centers(features, labels, num_classes)
    centers = np.asarray(centers, dtype=np.float64)
    if centers.shape[0] != num_classes:
        raise UserError(f"centers has {centers.shape[0]} rows, expected {num_classes}")
    own = center_distances(features, centers)[np.arange(labels.size), labels]
    count = np.bincount(labels, minlength=num_classes)
    mean = np.full(num_classes, np.nan)
    std = np.full(num_classes, np.nan)
    present = count > 0
    sums = np.bincount(labels, weights=own, minlength=num_classes)
    mean[present] = sums[present] / count[present]
    squares = np.bincount(labels, weights=(own - mean[labels]) ** 2, minlength=num_classes)
    std[present] = np.sqrt(squares[present] / count[present])
    kept = centers[present & np.isfinite(centers).all(1)]
    if len(kept) >= 2:
        pair = center_distances(kept, kept)
        separation = float(pair[np.triu_indices(len(kept), 1)].mean())
    else:
        separation = float("nan")
    ratio = float(np.nanmean(mean) / separation) if np.isfinite(separation) and separation > 0 else float("nan")
    return Compactness(mean=mean, std=std, count=count, center_separation=separation, ratio=ratio)
