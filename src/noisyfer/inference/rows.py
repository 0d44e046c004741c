"""The rows ``noisyfer predict`` writes (one per face, or one per image without a face or with an error).

CSV columns (JSON lines hold the same fields, with ``box``, ``landmarks`` and ``probabilities``
nested)::

    source, frame, timestamp, face, track, status,
    x1, y1, x2, y2, score,
    left_eye_x, left_eye_y, right_eye_x, ..., mouth_right_y,      (empty without landmarks)
    p_<class> for each class, label, error

``status`` is ``face`` (a face and its prediction), ``no_face`` (the image or frame has none) or
``error`` (the file could not be read, ``--on-bad skip``; ``error`` says why). ``frame`` and
``timestamp`` (seconds) are empty for images, ``track`` identifies a face across video frames.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from ..faces import LANDMARK_NAMES
from .results import FacePrediction

STATUSES = ("face", "no_face", "error")
ROW_SUFFIXES = (".csv", ".jsonl")


def face_row(source: str, face: FacePrediction, *, frame: int | None = None, timestamp: float | None = None) -> dict:
    return {"source": source, "frame": frame, "timestamp": None if timestamp is None else round(timestamp, 4),
            "face": face.index, "track": face.track, "status": "face", **face.as_dict(), "error": None}


def empty_row(source: str, status: str, *, frame: int | None = None, timestamp: float | None = None,
              error: str | None = None) -> dict:
    return {"source": source, "frame": frame, "timestamp": None if timestamp is None else round(timestamp, 4),
            "face": None, "track": None, "status": status, "box": None, "score": None, "landmarks": None,
            "probabilities": None, "label": None, "error": error}


class RowWriter:
    """Streams rows to ``.csv`` or ``.jsonl`` (chosen by the suffix)."""

    def __init__(self, path: str | os.PathLike, class_names: Sequence[str]):
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in ROW_SUFFIXES:
            raise UserError(f"--out: expected a .csv or .jsonl file, got '{self.path}'")
        self.class_names = tuple(class_names)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="")
        self.columns = ["source", "frame", "timestamp", "face", "track", "status", "x1", "y1", "x2", "y2", "score",
                        *[f"{name}_{axis}" for name in LANDMARK_NAMES for axis in "xy"],
                        *[f"p_{name}" for name in self.class_names], "label", "error"]
        self._csv = None
        if self.format == ".csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(self.columns)

    def write(self, row: dict) -> None:
        if self._csv is None:
            self._file.write(json.dumps(row) + "\n")
            return
        flat = [row[k] for k in ("source", "frame", "timestamp", "face", "track", "status")]
        flat += list(row["box"]) if row["box"] is not None else [None] * 4
        flat.append(row["score"])
        flat += [v for point in row["landmarks"] for v in point] if row["landmarks"] else [None] * 10
        probs = row["probabilities"]
        flat += [probs[name] for name in self.class_names] if probs else [None] * len(self.class_names)
        flat += [row["label"], row["error"]]
        self._csv.writerow(["" if v is None else v for v in flat])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
