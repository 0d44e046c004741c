"""Labelled preview grid of a dataset split: one row per class, a few faces each."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..format import FERData

#: Faces are upscaled (nearest neighbour, by an integer factor) to at least this many pixels.
MIN_TILE = 112
LABEL_WIDTH = 120
HEADER = 30
CAPTION = 16
GAP = 6

_BLEND_COLOUR = (255, 190, 60)
_NOISE_COLOUR = (255, 110, 110)


def tile_size(image_size: int) -> int:
    """Displayed side of one face: the image size times the smallest integer reaching MIN_TILE."""
    return image_size * max(1, -(-MIN_TILE // image_size))


def preview_size(num_classes: int, per_class: int, image_size: int) -> tuple[int, int]:
    """(width, height) in pixels of the grid :func:`write_preview` draws."""
    tile = tile_size(image_size)
    width = LABEL_WIDTH + per_class * (tile + GAP) + GAP
    height = HEADER + num_classes * (tile + CAPTION + GAP) + GAP
    return width, height


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def write_preview(
    data: FERData, path: str | os.PathLike, *, per_class: int = 8, seed: int = 0
) -> Path:
    """Write a PNG grid of ``per_class`` random faces of each class of ``data`` to ``path``.

    Rows follow ``data.labels``. Under a face, a blended expression is captioned with its two
    classes and the second one's share (``fear+surprise 30%``, from ``label_dist``; shortened to
    ``+surprise 30%`` where the tile is too narrow) and framed; when the
    dataset also has ``true_label`` and the label differs (a noisy label), the caption gives the
    true class instead, in red.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    path = Path(path).expanduser()
    rng = np.random.default_rng(seed)
    size = data.images.shape[1]
    tile = tile_size(size)
    factor = tile // size
    width, height = preview_size(data.num_classes, per_class, size)
    canvas = Image.new("RGB", (width, height), (28, 28, 32))
    draw = ImageDraw.Draw(canvas)
    big, small = _font(15), _font(11)
    draw.text(
        (GAP, 8),
        f"{len(data)} faces, {size}x{size} px; captions: blended expressions (second class share)",
        fill=(230, 230, 230),
        font=big,
    )
    dist = data.columns.get("label_dist")
    truth = data.columns.get("true_label")
    for row, name in enumerate(data.class_names):
        top = HEADER + row * (tile + CAPTION + GAP)
        members = np.flatnonzero(data.labels == row)
        draw.text((GAP, top + tile // 2 - 18), name, fill=(240, 240, 240), font=big)
        draw.text((GAP, top + tile // 2 + 2), f"{members.size} faces", fill=(170, 170, 170), font=small)
        if members.size == 0:
            continue
        chosen = np.sort(rng.choice(members, size=min(per_class, members.size), replace=False))
        for col, i in enumerate(chosen):
            left = LABEL_WIDTH + col * (tile + GAP)
            face = Image.fromarray(np.asarray(data.images[i]))
            canvas.paste(face.resize((tile, tile), Image.NEAREST), (left, top))
            caption, colour = _caption(int(i), row, data.class_names, dist, truth)
            if caption and draw.textlength(caption, font=small) > tile:
                caption = caption[caption.index("+") :] if "+" in caption else caption
            if caption:
                draw.text((left + 1, top + tile + 1), caption, fill=colour, font=small)
                if colour == _BLEND_COLOUR:
                    draw.rectangle((left, top, left + tile - 1, top + tile - 1), outline=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _caption(i: int, label: int, names, dist, truth) -> tuple[str, tuple[int, int, int]]:
    if truth is not None and int(truth[i]) != label:
        return f"true: {names[int(truth[i])]}", _NOISE_COLOUR
    if dist is None or dist.shape[1] < 2:
        return "", _BLEND_COLOUR
    row = dist[i]
    order = np.argsort(-row, kind="stable")
    if row[order[1]] <= 0:
        return "", _BLEND_COLOUR
    return f"{names[order[0]]}+{names[order[1]]} {row[order[1]]:.0%}", _BLEND_COLOUR
