"""Draw predictions on images: box, landmarks, predicted class and its probability per face."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from .results import FacePrediction

#: One colour (RGB) per class index, cycled; distinct enough on photos.
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def draw_faces(image: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of ``image`` (HxWx3 uint8 RGB) with every face's box, landmarks and ``label 0.93`` drawn."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    height, width = out.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    font_scale = max(0.35, min(height, width) / 900)
    for face in faces:
        colour = PALETTE[face.label_index % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, thickness, cv2.LINE_AA)
        if face.landmarks is not None:
            for x, y in face.landmarks:
                cv2.circle(out, (int(round(float(x))), int(round(float(y)))), thickness + 1, colour, -1, cv2.LINE_AA)
        text = f"{face.label} {face.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else min(y2 + 1, height - th - base - 2)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
        luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        cv2.putText(out, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, thickness,
                    cv2.LINE_AA)
    return out


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Save an RGB image; the format follows the suffix (PNG for one OpenCV cannot write)."""
    import cv2

    path = Path(path)
    if path.suffix.lower() not in WRITABLE_SUFFIXES:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
        raise UserError(f"{path}: cannot write the annotated image")
    return path
