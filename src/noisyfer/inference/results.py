"""What prediction returns: one :class:`FacePrediction` per face, one :class:`FrameResult` per video frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FacePrediction:
    """The expression of one face.

    Attributes
    ----------
    index
        Position of the face in its image or frame (0 = largest box).
    box
        float32 (4,) ``x1, y1, x2, y2`` in image pixels.
    score
        Detection confidence (1.0 for detector ``none``).
    landmarks
        float32 (5, 2) ``x, y`` of left eye, right eye, nose, mouth corners (image-left first), or
        None when the detector gives none.
    probabilities
        float32 (C,) class probabilities (smoothed over time when a video is smoothed).
    label
        Name of the most probable class.
    class_names
        Names of the C classes, in ``probabilities`` order.
    track
        Video only: the identity of the face across frames (boxes matched by overlap), else None.
    """

    index: int
    box: np.ndarray
    score: float
    landmarks: np.ndarray | None
    probabilities: np.ndarray
    class_names: tuple[str, ...] = field(repr=False)
    track: int | None = None

    @property
    def label(self) -> str:
        return self.class_names[self.label_index]

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.label_index])

    def as_dict(self) -> dict:
        """JSON-ready fields: face, box, score, landmarks, probabilities by class name, label."""
        return {
            "face": self.index,
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 6),
            "landmarks": None if self.landmarks is None else [[round(float(x), 2), round(float(y), 2)]
                                                               for x, y in self.landmarks],
            "probabilities": {name: round(float(p), 6) for name, p in zip(self.class_names, self.probabilities)},
            "label": self.label,
        }


@dataclass
class FrameResult:
    """The faces of one video frame.

    Attributes
    ----------
    frame
        Index of the frame in the video (0-based, counting every frame, also the skipped ones).
    timestamp
        Seconds from the start of the video (frame / frames per second).
    faces
        The faces found, largest first.
    image
        The frame itself (HxWx3 uint8 RGB), for drawing; None when not kept.
    """

    frame: int
    timestamp: float
    faces: list[FacePrediction]
    image: np.ndarray | None = field(default=None, repr=False)
