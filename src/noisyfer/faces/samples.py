"""Real photographs for checks and examples, read from scikit-image's data folder (never copied here).

scikit-image (a test dependency: ``pip install scikit-image``) ships ``astronaut.png`` (Eileen
Collins' NASA portrait, public domain) and ``lfw_subset.npy`` (100 face crops from Labeled Faces in
the Wild and 100 non-face crops, 25 x 25 gray). The package is located, not imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError


def skimage_data_dir() -> Path:
    """scikit-image's ``data`` folder, or a :class:`UserError` saying how to install it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise UserError("scikit-image is not installed (pip install scikit-image); its data folder holds the "
                        "sample photographs")
    return Path(spec.origin).parent / "data"


def astronaut_path() -> Path:
    """Path of scikit-image's ``astronaut.png`` (512 x 512 RGB portrait, one face)."""
    path = skimage_data_dir() / "astronaut.png"
    if not path.is_file():
        raise UserError(f"{path} not found (scikit-image installed without its data?)")
    return path


def lfw_subset(*, upscale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset as RGB uint8 images upscaled ``upscale`` times (bicubic).

    Returns
    -------
    images
        ``(200, 25 * upscale, 25 * upscale, 3)`` uint8: 100 faces then 100 non-faces.
    is_face
        ``(200,)`` bool.
    """
    path = skimage_data_dir() / "lfw_subset.npy"
    if not path.is_file():
        raise UserError(f"{path} not found (scikit-image installed without its data?)")
    gray = np.clip(np.rint(np.load(path) * 255.0), 0, 255).astype(np.uint8)
    side = gray.shape[1] * upscale
    images = np.stack([cv2.resize(g, (side, side), interpolation=cv2.INTER_CUBIC) for g in gray])
    is_face = np.arange(len(gray)) < len(gray) // 2
    return np.repeat(images[..., None], 3, axis=3), is_face
