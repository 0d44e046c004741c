"""What ``noisyfer predict`` reads: image files, folders (recursive), glob patterns and videos."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .video import VIDEO_SUFFIXES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


@dataclass(frozen=True)
class Source:
    """One input file.

    Attributes
    ----------
    path
        The file.
    kind
        ``image`` or ``video`` (by suffix; a named file of another suffix is tried as an image).
    name
        Its path relative to the folder or pattern root it was found under, prefixed by that folder's
        name; its file name when given directly. Annotated outputs are written under this name.
    """

    path: Path
    kind: str
    name: str


def kind_of(path: Path) -> str:
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def _known(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES


def expand_inputs(inputs: Sequence[str]) -> tuple[list[Source], list[Path], list[str]]:
    """The files named by ``inputs``, in order (folders and patterns sorted), each once.

    Returns the sources, the files left out (in a folder or pattern match, neither an image nor a video
    by suffix) and the inputs that match nothing (a missing path or an empty pattern).
    """
    sources: list[Source] = []
    ignored: list[Path] = []
    missing: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, name: str) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            sources.append(Source(path=path, kind=kind_of(path), name=name))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if _known(file):
                    add(file, str(Path(path.resolve().name) / file.relative_to(path)))
                else:
                    ignored.append(file)
        elif path.is_file():
            add(path, path.name)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                missing.append(item)
            for file in files:
                if _known(file):
                    add(file, file.name)
                else:
                    ignored.append(file)
        else:
            missing.append(item)
    return sources, ignored, missing
