"""The decoded cache: a dataset read once from its distributed files, kept in noisyfer's format.

A reader decodes, converts, crops and resizes every image once and stores the result under::

    <data.cache_dir>/<reader>/<settings key>/      a noisyfer dataset directory (meta.json, *.npy, *.npz)

The *settings key* hashes what changes the output apart from the source files: the reader and its
version, the decoder version, the dataset root, the image size, the face crop, the classes and their
order, ``data.on_bad`` and any reader option. The *source key*, stored in the entry's ``meta.json``,
hashes ``(relative path, size, mtime_ns)`` of every source file (label files and images). A later run
recomputes both keys, which needs only the label files and a ``stat`` per image, and maps the
entry (copy-on-write, so loading takes milliseconds) when the source key matches; a changed, added
or removed source file gives another source key and the entry is rebuilt in place, so a changed
source is never served stale and stale entries do not pile up. Writes are atomic (:func:`~noisyfer.data.format.save_dataset`) and a lock file keeps two runs
from building the same entry at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .datasets import cache_dir_of
from .format import FERData, check_dataset_target, load_dataset, read_meta, save_dataset

#: Bump when the layout of cache entries changes.
CACHE_VERSION = 1


def stat_files(paths: Sequence[str | os.PathLike]) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, mtimes_ns)`` int64 arrays of ``paths``; -1 for a file that does not exist.

    A directory counts as missing: it is no image.
    """
    sizes = np.full(len(paths), -1, dtype=np.int64)
    mtimes = np.full(len(paths), -1, dtype=np.int64)
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(st.st_mode):
            sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    return sizes, mtimes


def source_key(names: Iterable[str], sizes: Iterable[int], mtimes: Iterable[int]) -> str:
    """SHA-256 over sorted ``(name, size, mtime_ns)`` of the source files."""
    digest = hashlib.sha256()
    for name, size, mtime in sorted(zip(names, (int(s) for s in sizes), (int(m) for m in mtimes))):
        digest.update(f"{name}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def settings_key(reader: str, root: Path, settings: dict) -> str:
    """SHA-256 of the reader, the resolved dataset root and the settings (JSON, sorted keys)."""
    payload = {"cache_version": CACHE_VERSION, "reader": reader, "root": str(Path(root).resolve()),
               "settings": settings}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def entry_dir(config: DataConfig, reader: str, key: str) -> Path:
    """Directory of the cache entry of ``reader`` with settings key ``key``."""
    return cache_dir_of(config) / reader / key[:24]


def load_entry(directory: Path, key: str) -> tuple[dict[str, FERData], dict] | None:
    """The splits and info of the entry at ``directory`` if its source key is ``key``, else ``None``.

    Images are memory-mapped copy-on-write: loading takes milliseconds whatever the size, pages are
    read as batches first touch them, runs sharing an entry share its pages, and a write by a method
    stays private to its process. An unreadable entry (a killed copy, a format change) gives
    ``None``: it is rebuilt.
    """
    if not (directory / "meta.json").is_file():
        return None
    try:
        info = read_meta(directory).get("info", {})
        if info.get("source_key") != key:
            return None
        splits = load_dataset(directory, mmap=True)
        for data in splits.values():
            data.images = np.load(data.images.filename, mmap_mode="c")
        return splits, info
    except (DataError, OSError, ValueError, KeyError, AttributeError):
        return None


def store_entry(directory: Path, splits: dict[str, FERData], info: dict) -> Path:
    """Write ``splits`` with ``info`` (which must hold ``source_key``) atomically to ``directory``."""
    if "source_key" not in info:
        raise ValueError("a cache entry's info needs its source_key")
    if directory.is_dir() and any(directory.iterdir()):
        try:
            check_dataset_target(directory, overwrite=True)
        except DataError:  # an unreadable entry (a partial copy, an older layout): rebuilt, if it is only that
            foreign = [p.name for p in directory.iterdir()
                       if not (p.is_file() and (p.name == "meta.json" or p.name.endswith((".npy", ".npz"))))]
            if foreign:
                raise DataError(f"cache entry holds files that are not the cache's ({', '.join(sorted(foreign)[:3])}); "
                                "move them away or delete the entry", path=directory) from None
            shutil.rmtree(directory)
    return save_dataset(splits, directory, info=info, overwrite=True)


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock for building ``directory`` (no-op where ``fcntl`` is missing)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.parent / f"{directory.name}.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
