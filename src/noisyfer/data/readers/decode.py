"""Decoding image files into one uint8 (N, S, S, 3) array, in parallel over the CPU cores.

Per image: open with PIL; for JPEGs much larger than needed, let the decoder downscale by 1/2, 1/4
or 1/8 while decoding (draft mode, never below the target size); crop to the face box when given;
convert to RGB (gray is replicated, alpha dropped as ``Image.convert("RGB")`` does, CMYK and palettes
converted, 16-bit gray scaled to 8 bits); resize to S x S with PIL's antialiased bilinear filter (the
``Resize`` of the official pipelines). EXIF orientation is not applied, as in those pipelines.

A file that cannot be decoded (missing, empty, truncated, corrupt, unsupported mode) is returned as a
failure with PIL's reason; the caller decides whether that stops the build (``data.on_bad``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import logging
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Sequence

import numpy as np
from PIL import Image

#: Bump when a change of this module changes decoded pixels (part of every cache key).
DECODE_VERSION = 1

#: File name endings treated as images by the folder readers (compared in lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

#: Images per task sent to a worker process.
CHUNK = 256

logger = logging.getLogger("noisyfer.data")

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB mode (see the module docstring for the conversions)."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2))
    if image.mode == "F":
        raise ValueError("floating-point images (mode F) are not supported")
    if image.mode in ("P", "PA"):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _draft(image: Image.Image, size: int, box: Sequence[float] | None) -> float:
    """Let a JPEG decoder downscale while decoding; returns the scale applied (1, 1/2, 1/4 or 1/8)."""
    if image.format != "JPEG":
        return 1.0
    width, height = image.size
    box_w, box_h = (box[2] - box[0], box[3] - box[1]) if box is not None else (width, height)
    if box_w < 2 * size or box_h < 2 * size:
        return 1.0
    wanted = (math.ceil(width * size / box_w), math.ceil(height * size / box_h))
    image.draft(image.mode, wanted)
    return image.size[0] / width


def decode_image(path: str | os.PathLike, size: int, box: Sequence[float] | None = None, *,
                 min_side: int = 1) -> np.ndarray:
    """One image file as uint8 (size, size, 3) RGB.

    Parameters
    ----------
    path
        Image file.
    size
        Output side in pixels.
    box
        Optional crop ``(left, top, right, bottom)`` in pixels of the stored image; it is clipped
        to the image and must keep a positive area.
    min_side
        Smallest accepted side in pixels of the stored image (of the face box, when given): a
        smaller image would be upscaled into a blur, so it is refused (``ValueError``).

    Raises
    ------
    OSError, ValueError, SyntaxError
        As PIL raises them for a missing, truncated or corrupt file; ``ValueError`` for an empty
        crop box or an unsupported mode.
    """
    with Image.open(path) as image:
        original = image.size
        scale = _draft(image, size, box)
        image.load()
        if box is not None:
            left, top = max(box[0], 0.0), max(box[1], 0.0)
            right, bottom = min(box[2], original[0]), min(box[3], original[1])
            if right - left < 1 or bottom - top < 1:
                raise ValueError(f"face box {tuple(box)} lies outside the {original[0]}x{original[1]} image")
            if min(right - left, bottom - top) < min_side:
                raise ValueError(f"face box of {right - left:g}x{bottom - top:g} pixels is smaller than "
                                 f"data.min_side={min_side}")
            scaled = tuple(int(round(v * scale)) for v in (left, top, right, bottom))
            image = image.crop(scaled)
        elif min(original) < min_side:
            raise ValueError(f"image of {original[0]}x{original[1]} pixels is smaller than data.min_side={min_side}")
        rgb = to_rgb(image)
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def _decode_chunk(task: tuple) -> tuple[int, np.ndarray, list[tuple[int, str]]]:
    start, paths, boxes, size, min_side = task
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    failures = []
    for i, path in enumerate(paths):
        try:
            out[i] = decode_image(path, size, None if boxes is None else boxes[i], min_side=min_side)
        except Exception as exc:  # noqa: BLE001 - every decoder failure is reported with its reason
            failures.append((start + i, f"cannot decode image {path}: {type(exc).__name__}: {exc}"))
    return start, out, failures


def resolve_workers(workers: int) -> int:
    """``workers`` processes; 0 means one per CPU core available to this process."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0: one per core), got {workers}")
    if workers:
        return workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _context():
    # fork: workers start at once and never re-import the user's script (which would run its
    # dataset reads again); they only run PIL and numpy, none of the parent's threads or locks
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _run(tasks: list, workers: int, images: np.ndarray, failures: dict, bar) -> None:
    pool = None if workers <= 1 else ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    results = map(_decode_chunk, tasks) if pool is None else pool.map(_decode_chunk, tasks)
    try:
        for start, chunk, failed in results:
            images[start:start + chunk.shape[0]] = chunk
            failures.update(failed)
            if bar is not None:
                bar.update(chunk.shape[0])
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def decode_files(paths: Sequence[str], *, size: int, boxes: np.ndarray | None = None, workers: int = 0,
                 progress: str | None = None, min_side: int = 1) -> tuple[np.ndarray, dict[int, str]]:
    """Decode ``paths`` into uint8 (N, size, size, 3); failed images stay black and are returned.

    Parameters
    ----------
    paths
        Image files.
    size
        Output side.
    boxes
        Optional float (N, 4) crop boxes ``(left, top, right, bottom)``.
    workers
        Processes (0: one per core; 1: in this process). The output does not depend on it.
    progress
        Description of a progress bar (shown on a terminal), or ``None``.
    min_side
        Smallest accepted side of an image (or face box) in pixels; smaller ones are failures.

    Returns
    -------
    images, failures
        The array and ``{index: reason}`` of the images that could not be decoded.
    """
    n = len(paths)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    tasks = [(s, list(paths[s:s + CHUNK]), None if boxes is None else boxes[s:s + CHUNK], size, min_side)
             for s in range(0, n, CHUNK)]
    workers = min(resolve_workers(workers), len(tasks))
    failures: dict[int, str] = {}
    bar = None
    if progress is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=progress, unit="img", disable=None, leave=False)
    try:
        try:
            _run(tasks, workers, images, failures, bar)
        except BrokenProcessPool:
            # a worker died (killed for memory, or could not start under spawn)
            logger.warning("decoding in worker processes failed; decoding in this process instead")
            failures.clear()
            if bar is not None:
                bar.reset()
            _run(tasks, 1, images, failures, bar)
    finally:
        if bar is not None:
            bar.close()
    return images, failures
