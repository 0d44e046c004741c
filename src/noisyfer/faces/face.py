"""The record every face detector returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Order of the five landmarks ("left" = image-left, as MTCNN and the face-alignment templates use).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    Attributes
    ----------
    box
        float32 (4,): ``x1, y1, x2, y2`` in image pixels (continuous coordinates: the top-left corner of
        the top-left pixel is (0, 0), so a box covering a W x H image is ``0, 0, W, H``).
    score
        Detection confidence: MTCNN's O-Net face probability, the number of merged raw detections for
        Haar, 1.0 for detector ``none``.
    landmarks
        float32 (5, 2) ``x, y`` in :data:`LANDMARK_NAMES` order, or None when the detector has none.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        box = np.asarray(self.box, dtype=np.float32).reshape(4)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", float(self.score))
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2))

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))

    def to_dict(self) -> dict:
        """JSON-ready fields (box, score, landmarks as nested lists)."""
        return {"box": [round(float(v), 2) for v in self.box], "score": round(self.score, 6),
                "landmarks": None if self.landmarks is None
                else [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]}


def sort_faces(faces: list[Face]) -> list[Face]:
    """Faces by decreasing box area (ties: decreasing score), the order every detector returns."""
    return sorted(faces, key=lambda f: (-f.area, -f.score))
