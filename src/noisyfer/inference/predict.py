"""``noisyfer predict``: every face of many images and videos into one table, optionally drawn."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from ..errors import UserError
from ..faces import read_image
from .annotate import draw_faces, write_image
from .recognizer import Recognizer
from .rows import RowWriter, empty_row, face_row
from .sources import Source
from .video import FaceTracks, VideoWriter, open_video

ON_BAD = ("error", "skip")


@dataclass
class PredictStats:
    """Counts of one ``predict`` call (what the command prints)."""

    images: int = 0
    frames: int = 0
    faces: int = 0
    without_face: int = 0
    errors: list[str] = field(default_factory=list)
    annotated: list[Path] = field(default_factory=list)


class _Names:
    """Unique output names under the annotation folder (``a.png``, ``a-2.png``, ...)."""

    def __init__(self, root: Path):
        self.root = root
        self.used: set[Path] = set()

    def __call__(self, name: str) -> Path:
        path = self.root / name
        stem, suffix, n = path.with_suffix(""), path.suffix, 1
        while path in self.used:
            n += 1
            path = Path(f"{stem}-{n}{suffix}")
        self.used.add(path)
        return path


def predict_files(recognizer: Recognizer, sources: Sequence[Source], writer: RowWriter, *,
                  annotate: str | os.PathLike | None = None, every: int = 1, smooth: float = 0.0,
                  largest: bool = False, on_bad: str = "error", image_batch: int = 16,
                  progress: bool = True) -> PredictStats:
    """Predict every face of ``sources`` and write a row per face (or per faceless image / bad file).

    Images are read, detected and classified ``image_batch`` at a time; videos frame batch by frame
    batch. ``on_bad="error"`` stops at the first unreadable file with a :class:`UserError` naming it;
    ``"skip"`` writes a row with the reason and goes on.
    """
    if on_bad not in ON_BAD:
        raise UserError(f"--on-bad: expected one of {', '.join(ON_BAD)}, got '{on_bad}'")
    if every < 1:
        raise UserError(f"--every: expected a positive number of frames, got {every}")
    FaceTracks(factor=smooth)  # checks the factor before any file is read
    stats = PredictStats()
    names = _Names(Path(annotate)) if annotate is not None else None
    images = [s for s in sources if s.kind == "image"]
    videos = [s for s in sources if s.kind == "video"]
    with tqdm(total=len(images), unit="image", disable=not progress or not images, leave=False) as bar:
        for start in range(0, len(images), image_batch):
            chunk = images[start:start + image_batch]
            loaded: list = []
            for source in chunk:
                try:
                    loaded.append(read_image(source.path))
                except UserError as exc:
                    if on_bad == "error":
                        _bad(stats, writer, source, exc, on_bad)
                    loaded.append(exc)
            arrays = [item for item in loaded if not isinstance(item, UserError)]
            predictions = iter(recognizer.predict_many(arrays, largest=largest))
            for source, image in zip(chunk, loaded):  # rows in input order, bad files included
                if isinstance(image, UserError):
                    _bad(stats, writer, source, image, on_bad)
                    continue
                faces = next(predictions)
                stats.images += 1
                _write_faces(stats, writer, str(source.path), faces)
                if names is not None:
                    stats.annotated.append(write_image(names(source.name), draw_faces(image, faces)))
            bar.update(len(chunk))
    for source in videos:
        try:
            capture, info = open_video(source.path)
            capture.release()
        except UserError as exc:
            _bad(stats, writer, source, exc, on_bad)
            continue
        out = None
        if names is not None:
            fps = (info.fps or 25.0) / every
            out = VideoWriter(names(str(Path(source.name).with_suffix(".mp4"))), fps=fps, width=info.width,
                              height=info.height)
        total = (info.frame_count + every - 1) // every if info.frame_count else None
        try:
            with tqdm(total=total, unit="frame", desc=source.path.name, disable=not progress, leave=False) as bar:
                for result in recognizer.predict_video(source.path, every=every, smooth=smooth, largest=largest,
                                                       keep_frames=out is not None):
                    stats.frames += 1
                    _write_faces(stats, writer, str(source.path), result.faces, frame=result.frame,
                                 timestamp=result.timestamp)
                    if out is not None:
                        out.write(draw_faces(result.image, result.faces))
                    bar.update(1)
        except UserError as exc:
            _bad(stats, writer, source, exc, on_bad)
        finally:
            if out is not None:
                out.close()
                stats.annotated.append(out.path)
    return stats


def _write_faces(stats: PredictStats, writer: RowWriter, source: str, faces, **where) -> None:
    if not faces:
        stats.without_face += 1
        writer.write(empty_row(source, "no_face", **where))
    for face in faces:
        stats.faces += 1
        writer.write(face_row(source, face, **where))


def _bad(stats: PredictStats, writer: RowWriter, source: Source, exc: UserError, on_bad: str) -> None:
    if on_bad == "error":
        raise UserError(f"{exc} (use --on-bad skip to write a row for it and go on)") from None
    stats.errors.append(str(exc))
    writer.write(empty_row(str(source.path), "error", error=str(exc)))
