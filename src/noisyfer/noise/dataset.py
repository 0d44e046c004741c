"""Noise protocols applied to a dataset split, and noisy labels put back into one.

Only the training split should go through :func:`noise_from_dataset`; test labels stay clean.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..data.format import FERData
from ..errors import DataError, UserError
from .protocols import apply_noise
from .result import NoisyLabels, labels_sha256

#: Column added by :func:`with_noisy_labels`: the labels before noise, for auditing noise detection.
ORIGINAL_LABEL_COLUMN = "original_label"


def noise_from_dataset(
    data: FERData,
    *,
    kind: str,
    rate: float,
    seed: int,
    exact: bool = False,
    pairs: Mapping[object, object] | None = None,
    probs: np.ndarray | str | os.PathLike | None = None,
) -> NoisyLabels:
    """Apply a noise protocol to the labels of a (training) split.

    Instance noise takes its per-sample probabilities from ``probs`` (an array or a ``.npy`` file of
    shape (N, C), e.g. a model's softmax predictions) or else from the dataset's ``label_dist``
    column; crowd noise takes the ``crowd_label`` column. Other arguments as in
    :func:`~noisyfer.noise.apply_noise`.

    Raises
    ------
    UserError
        When the dataset lacks the column the kind needs, or as :func:`~noisyfer.noise.apply_noise`.
    """
    crowd_labels = None
    if kind == "instance":
        if probs is None:
            if "label_dist" not in data.columns:
                raise UserError(
                    "instance noise needs per-sample class probabilities: the dataset has no "
                    "'label_dist' column; pass noise.probs=FILE.npy with model predictions (N, C)"
                )
            probs = data.columns["label_dist"]
        elif isinstance(probs, (str, os.PathLike)):
            probs = load_probs(probs, num_samples=len(data), num_classes=data.num_classes)
    elif kind == "crowd":
        if "crowd_label" not in data.columns:
            available = ", ".join(sorted(data.columns)) or "none"
            raise UserError(
                "crowd noise needs the majority vote of an annotator crowd: the dataset has no "
                f"'crowd_label' column (its columns: {available})"
            )
        crowd_labels = data.columns["crowd_label"]
    return apply_noise(
        data.labels,
        kind=kind,
        rate=rate,
        seed=seed,
        class_names=data.class_names,
        exact=exact,
        pairs=pairs,
        probs=probs,
        crowd_labels=crowd_labels,
    )


def load_probs(path: str | os.PathLike, *, num_samples: int, num_classes: int) -> np.ndarray:
    """Per-sample class probabilities (N, C) from a ``.npy`` file, checked for shape and dtype."""
    path = Path(path)
    if not path.is_file():
        raise DataError("probability file (noise.probs) not found", path=path)
    try:
        probs = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"not a .npy array ({exc})", path=path) from None
    if probs.shape != (num_samples, num_classes) or not np.issubdtype(probs.dtype, np.floating):
        raise DataError(
            f"expected float probabilities of shape ({num_samples}, {num_classes}) (samples, classes), "
            f"got {probs.dtype} {probs.shape}",
            path=path,
        )
    return probs


def with_noisy_labels(data: FERData, noisy: NoisyLabels) -> FERData:
    """``data`` with its labels replaced by ``noisy.labels`` (images shared, not copied).

    The original labels are kept in the :data:`ORIGINAL_LABEL_COLUMN` column. ``noisy`` must have
    been made from exactly this split's labels (same count, class names and label checksum), so a
    label file cannot be applied to the wrong dataset or split.
    """
    if len(noisy) != len(data):
        raise UserError(f"noisy labels are for {len(noisy)} samples, the split has {len(data)}")
    if tuple(noisy.class_names) != tuple(data.class_names):
        raise UserError(
            f"noisy labels use classes {list(noisy.class_names)}, the dataset {list(data.class_names)}"
        )
    if labels_sha256(noisy.original) != labels_sha256(data.labels):
        differ = int(np.flatnonzero(noisy.original != data.labels)[0])
        raise UserError(
            f"noisy labels were made from other labels than this split's (first difference at "
            f"sample {differ}: {int(noisy.original[differ])} vs {int(data.labels[differ])})"
        )
    columns = dict(data.columns)
    columns[ORIGINAL_LABEL_COLUMN] = data.labels.copy()
    return FERData(images=data.images, labels=noisy.labels.copy(), class_names=data.class_names,
                   columns=columns)
