"""Video frames in, faces followed over time: decoding (OpenCV), face tracks and temporal smoothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..errors import UserError
from ..faces.boxes import pairwise_overlap

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v")
#: Two boxes in consecutive processed frames belong to the same face when they overlap at least this much.
TRACK_IOU = 0.3


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int
    width: int
    height: int


def open_video(path: str | os.PathLike):
    """An opened ``cv2.VideoCapture`` and its :class:`VideoInfo`; a :class:`UserError` naming the file if
    it cannot be decoded."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"{path}: cannot decode video (OpenCV could not open it)")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    info = VideoInfo(fps=fps if fps > 0 else 0.0, frame_count=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                     width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return capture, info


def read_frames(path: str | os.PathLike, *, every: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, timestamp in seconds, HxWx3 uint8 RGB)`` of frames 0, every, 2 * every, ...

    Skipped frames are only grabbed, not decoded into images. Timestamps are ``index / fps``; a video
    without a frame rate gets the decoder's position instead.
    """
    import cv2

    if every < 1:
        raise UserError(f"--every: expected a positive number of frames, got {every}")
    capture, info = open_video(path)
    try:
        index = 0
        while True:
            if index % every:
                if not capture.grab():
                    break
                index += 1
                continue
            ok, frame = capture.read()
            if not ok:
                if index == 0:
                    raise UserError(f"{path}: cannot decode video (no frame could be read)")
                break
            timestamp = index / info.fps if info.fps else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield index, float(timestamp), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


class FaceTracks:
    """Follows faces from one processed frame to the next and smooths their probabilities.

    A face continues the track of the previous frame's box it overlaps most (greedy, IoU at least
    :data:`TRACK_IOU`); others start new tracks, and tracks without a face in this frame end. The
    smoothed probabilities of a track are an exponential moving average::

        s_0 = p_0,    s_t = factor * s_{t-1} + (1 - factor) * p_t

    so ``factor = 0`` keeps the frame's own probabilities and ``factor = 0.6`` weighs the last
    frames 0.4, 0.24, 0.144, ... .

    Parameters
    ----------
    factor
        Weight of the past, in [0, 1).
    """

    def __init__(self, *, factor: float = 0.0):
        if not 0.0 <= factor < 1.0:
            raise UserError(f"--smooth: expected a factor in [0, 1), got {factor}")
        self.factor = float(factor)
        self._boxes = np.zeros((0, 4))
        self._probs = np.zeros((0, 0), dtype=np.float32)
        self._ids: list[int] = []
        self._next_id = 0

    def update(self, boxes: np.ndarray, probabilities: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Track ids and smoothed probabilities of this frame's faces (boxes (N, 4), probabilities (N, C))."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        n = len(boxes)
        match = [-1] * n
        if n and len(self._boxes):
            iou = pairwise_overlap(torch.from_numpy(boxes), torch.from_numpy(self._boxes)).numpy()
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                i, j = divmod(int(flat), iou.shape[1])
                if iou[i, j] < TRACK_IOU:
                    break
                if match[i] < 0 and j not in match:
                    match[i] = j
        ids, smoothed = [], probabilities.copy()
        for i in range(n):
            if match[i] >= 0:
                ids.append(self._ids[match[i]])
                smoothed[i] = self.factor * self._probs[match[i]] + (1.0 - self.factor) * probabilities[i]
            else:
                ids.append(self._next_id)
                self._next_id += 1
        self._boxes, self._probs, self._ids = boxes, smoothed, ids
        return ids, smoothed


class VideoWriter:
    """Writes RGB frames to an mp4 (``mp4v``) or avi (``MJPG``) file with OpenCV."""

    def __init__(self, path: str | os.PathLike, *, fps: float, width: int, height: int):
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self._writer = cv2.VideoWriter(str(self.path), fourcc, float(fps or 25.0), (int(width), int(height)))
        if not self._writer.isOpened():
            raise UserError(f"{self.path}: cannot write video (OpenCV has no encoder for it)")

    def write(self, frame: np.ndarray) -> None:
        import cv2

        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
