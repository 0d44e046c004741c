"""OpenCV's Viola-Jones frontal-face Haar cascade: fast, boxes only (no landmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import UserError
from .detectors import FaceDetector, check_images, register_detector
from .face import Face, sort_faces

CASCADE = "haarcascade_frontalface_default.xml"


def cascade_path(name: str = CASCADE) -> Path:
    """Path of a cascade file shipped with opencv-python(-headless) < 5 (``cv2.data.haarcascades``)."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / name
    if not folder or not path.is_file():
        raise UserError(f"Haar cascade '{name}' not found: it ships with opencv-python-headless < 5 "
                        f"(found OpenCV {cv2.__version__}); pip install 'opencv-python-headless<5'")
    return path


@register_detector("haar")
class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade (Viola & Jones), on the equalised gray image.

    Parameters
    ----------
    min_face_size
        Smallest face side searched, in pixels.
    scale_factor
        Ratio between successive search scales.
    min_neighbors
        Raw detections that must overlap for a face to be reported (higher: fewer false faces).
    cascade
        Cascade file name in ``cv2.data.haarcascades``.

    Notes
    -----
    A face's score is the number of raw detections merged into its box (at least ``min_neighbors``),
    a confidence, not a probability. Images are processed one by one (OpenCV's cascade is not batched).
    """

    name = "haar"

    def __init__(self, *, device: str = "auto", min_face_size: int = 20, scale_factor: float = 1.1,
                 min_neighbors: int = 5, cascade: str = CASCADE):
        del device  # OpenCV runs on the CPU
        if scale_factor <= 1.0:
            raise UserError(f"haar: scale_factor must be > 1, got {scale_factor}")
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self._cascade = cv2.CascadeClassifier(str(cascade_path(cascade)))
        if self._cascade.empty():
            raise UserError(f"haar: OpenCV could not load the cascade {cascade_path(cascade)}")

    def _detect(self, image: np.ndarray) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects, neighbours = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face_size, self.min_face_size))
        faces = [Face(box=np.array([x, y, x + w, y + h]), score=float(n), landmarks=None)
                 for (x, y, w, h), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).reshape(-1))]
        return sort_faces(faces)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self._detect(image) for image in check_images(images)]
