"""The path every reader shares: listed items -> checks -> cache lookup -> decode -> checks -> cache.

A reader parses its label files into a :class:`Manifest` (one row per image: split, relative path,
label in the run's class order, the label file and line it came from, optional face box and values),
describes its settings in a :class:`ReadSpec`, and calls :func:`read_image_files`. Readers whose images
live inside a CSV (FER2013, FERPlus) call :func:`cached_read` with their own build function.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ...config import DataConfig
from ...errors import DataError
from ..cache import build_lock, entry_dir, load_entry, settings_key, source_key, stat_files, store_entry
from ..format import FERData
from .decode import DECODE_VERSION, decode_files
from .report import ReadReport, ReadSplits
from .textfiles import relative_name


@dataclass
class ReadSpec:
    """What a reader produces and from where.

    Attributes
    ----------
    reader
        Registered dataset name.
    root
        Dataset root (``data.root``).
    class_names
        Classes in the run's order.
    image_size
        Output side in pixels.
    splits
        Split names in the order they are stored (each must end up non-empty).
    settings
        Everything besides the source files that changes the output (hashed into the cache key).
    label_files
        The files the labels come from (their size and mtime are part of the source key).
    info
        Descriptive facts stored in the dataset's ``meta.json`` (class mapping, layout, ...).
    workers
        Decoding processes (0: one per core).
    split_sources
        Split name -> the label file (or folder) that lists it, for messages about that split.
    """

    reader: str
    root: Path
    class_names: Sequence[str]
    image_size: int
    splits: Sequence[str]
    settings: dict
    label_files: Sequence[Path]
    info: dict = field(default_factory=dict)
    workers: int = 0
    split_sources: dict = field(default_factory=dict)

    def full_settings(self, on_bad: str, min_side: int = 1) -> dict:
        return {**self.settings, "class_names": list(self.class_names), "image_size": self.image_size,
                "splits": list(self.splits), "on_bad": on_bad, "min_side": min_side,
                "decode_version": DECODE_VERSION}


class Manifest:
    """Images listed by a dataset's label files, in listing order."""

    def __init__(self) -> None:
        self.splits: list[str] = []
        self.paths: list[str] = []
        self.labels: list[int] = []
        self.files: list[str] = []
        self.lines: list[int | None] = []
        self.boxes: list[tuple[float, float, float, float] | None] = []
        self.values: dict[str, list] = defaultdict(list)

    def __len__(self) -> int:
        return len(self.paths)

    def add(self, split: str, path: str, label: int, file: str | Path, line: int | None, *,
            box: tuple[float, float, float, float] | None = None, **values) -> None:
        """One image: ``path`` relative to the root (POSIX), ``label`` in the run's class order."""
        self.splits.append(split)
        self.paths.append(path)
        self.labels.append(int(label))
        self.files.append(str(file))
        self.lines.append(line)
        self.boxes.append(box)
        for name, value in values.items():
            self.values[name].append(value)

    def take(self, rows: Sequence[int]) -> "Manifest":
        out = Manifest()
        for attr in ("splits", "paths", "labels", "files", "lines", "boxes"):
            column = getattr(self, attr)
            setattr(out, attr, [column[i] for i in rows])
        for name, column in self.values.items():
            out.values[name] = [column[i] for i in rows]
        return out


def check_splits(splits: dict[str, FERData], spec: ReadSpec) -> None:
    """Every split non-empty and every class present in the training split, else :class:`DataError`."""
    where = spec.label_files[0] if spec.label_files else spec.root
    for name in spec.splits:
        if name not in splits or len(splits[name]) == 0:
            raise DataError(f"the '{name}' split of dataset '{spec.reader}' is empty "
                            f"(after leaving out excluded and skipped items)", path=spec.split_sources.get(name, where))
    counts = np.bincount(splits["train"].labels, minlength=len(spec.class_names))
    empty = [spec.class_names[c] for c in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"class(es) {', '.join(empty)} have no training sample; a class must be learnable "
                        f"(choose data.classes or fix the label file)", path=where)


def cached_read(spec: ReadSpec, config: DataConfig, sources: tuple[list[str], np.ndarray, np.ndarray],
                report: ReadReport, build: Callable[[ReadReport], dict[str, FERData]]) -> ReadSplits:
    """Load the cache entry of ``spec`` and ``sources`` or ``build`` it, check it and store it.

    ``sources`` are ``(names, sizes, mtimes_ns)`` of every source file. On a cache hit the report of
    the build (bad items skipped, exclusions) is read back from the entry.
    """
    settings = spec.full_settings(report.on_bad, config.min_side)
    skey = settings_key(spec.reader, spec.root, settings)
    src = source_key(*sources)
    directory = entry_dir(config, spec.reader, skey)
    with build_lock(directory):
        hit = load_entry(directory, src)
        if hit is not None:
            splits, info = hit
            report = ReadReport.from_json(info["report"])
        else:
            splits = build(report)
            check_splits(splits, spec)
            info = {
                **spec.info,
                "reader": spec.reader,
                "root": str(spec.root),
                "class_order": list(spec.class_names),
                "settings": settings,
                "settings_key": skey,
                "source_key": src,
                "num_source_files": len(sources[0]),
                "class_counts": {name: np.bincount(s.labels, minlength=len(spec.class_names)).tolist()
                                 for name, s in splits.items()},
                "report": report.to_json(),
            }
            store_entry(directory, splits, info)
    report.log()
    return ReadSplits(splits, report, info)


def _column(values: list) -> np.ndarray:
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    return array


def read_image_files(spec: ReadSpec, manifest: Manifest, report: ReadReport, config: DataConfig) -> ReadSplits:
    """Check that the listed images exist and are not empty, then load or build the decoded cache."""
    root = str(spec.root)
    abs_paths = [os.path.join(root, p) for p in manifest.paths]
    sizes, mtimes = stat_files(abs_paths)
    present = []
    for i, path in enumerate(abs_paths):
        if sizes[i] < 0:
            report.bad(manifest.files[i], manifest.lines[i], f"image listed but absent: {path}", item=manifest.paths[i])
        elif sizes[i] == 0:
            report.bad(manifest.files[i], manifest.lines[i], f"empty image file (0 bytes): {path}",
                       item=manifest.paths[i])
        else:
            present.append(i)
    split_rank = {s: k for k, s in enumerate(spec.splits)}
    present.sort(key=lambda i: split_rank[manifest.splits[i]])  # stable: listing order within a split
    items = manifest.take(present)
    label_sizes, label_mtimes = stat_files([str(p) for p in spec.label_files])
    names = [relative_name(p, spec.root) for p in spec.label_files] + items.paths
    sources = (names, np.concatenate([label_sizes, sizes[present]]), np.concatenate([label_mtimes, mtimes[present]]))

    def build(report: ReadReport) -> dict[str, FERData]:
        boxes = None
        if any(b is not None for b in items.boxes):
            boxes = np.asarray(items.boxes, dtype=np.float64)
        images, failures = decode_files([os.path.join(root, p) for p in items.paths], size=spec.image_size,
                                        boxes=boxes, workers=spec.workers, progress=f"decoding {spec.reader}",
                                        min_side=config.min_side)
        for i in sorted(failures):
            report.bad(items.files[i], items.lines[i], failures[i], item=items.paths[i])
        keep = np.ones(len(items), dtype=bool)
        keep[list(failures)] = False
        split_of = np.asarray(items.splits)
        labels = np.asarray(items.labels, dtype=np.int64)
        columns = {"path": np.asarray(items.paths, dtype=str)}
        columns.update({name: _column(v) for name, v in items.values.items()})
        out = {}
        for split in spec.splits:
            rows = np.flatnonzero((split_of == split) & keep) if len(items) else np.zeros(0, dtype=np.int64)
            contiguous = rows.size and rows[-1] - rows[0] + 1 == rows.size
            take = slice(int(rows[0]), int(rows[-1]) + 1) if contiguous else rows
            out[split] = FERData(images=images[take], labels=labels[take], class_names=tuple(spec.class_names),
                                 columns={k: v[take] for k, v in columns.items()})
        return out

    return cached_read(spec, config, sources, report, build)
