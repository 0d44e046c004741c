"""Images in the form the face package works on: HxWx3 uint8 RGB arrays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.readers.decode import to_rgb
from ..errors import UserError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as an HxWx3 uint8 RGB array.

    EXIF orientation is applied (a phone photo comes out upright), gray, palette, 16-bit and RGBA
    images are converted (alpha dropped). Raises :class:`~noisyfer.errors.UserError` naming the file
    when it is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: image file not found")
    if path.is_dir():
        raise UserError(f"{path}: expected an image file, found a directory")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(to_rgb(image), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{path}: cannot read image ({exc})") from None


def as_rgb(image) -> np.ndarray:
    """A path, PIL image or array (HxW gray, HxWx1, HxWx3 RGB, HxWx4 RGBA) as an HxWx3 uint8 RGB array.

    Arrays must be uint8 (a float array would need a guess about its range, so it is refused).
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image), dtype=np.uint8)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise UserError(f"image arrays must be uint8 (H, W, 3) RGB, got {array.dtype} {array.shape}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise UserError(f"image arrays must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])
