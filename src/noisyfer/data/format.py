"""noisyfer's on-disk dataset format: decoded images plus a table, so training starts from tensors.

A dataset directory holds one ``meta.json`` and, per split (``train``, ``test``, ...), two files::

    meta.json              {"format": "noisyfer-dataset", "version": 1, "class_names": [...],
                            "splits": {"train": {"num_samples": N, "image_shape": [H, W, 3]}, ...},
                            "info": {...free JSON: source, generator settings, class order...}}
    train.images.npy       uint8 array (N, H, W, 3), RGB
    train.table.npz        per-sample columns, first dimension N (see COLUMNS)

Every reader (the simulator, RAF-DB, FERPlus, ...) produces this format; ``load_dataset`` memory-maps
the image array, so loading tens of thousands of images takes a fraction of a second.

Writing is atomic: files go to a temporary directory that is renamed into place at the end, so a
killed build never leaves a half-written dataset that a later run would trust. A dataset is written
only into a new or empty directory, or over a dataset when asked to (``overwrite=True``, ``noisyfer
synth --force``): a directory holding anything else is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import DataError
from ..fileio import umask_mode, writing

FORMAT_NAME = "noisyfer-dataset"
FORMAT_VERSION = 1

#: Known optional per-sample columns and what they hold. Readers may add others.
COLUMNS: dict[str, str] = {
    "true_label": "int64 (N,): ground-truth class (simulator only; real data does not know it)",
    "label_dist": "float32 (N, C): label distribution (simulator blend, FERPlus votes), rows sum to 1",
    "valence": "float32 (N,): valence in [-1, 1]",
    "arousal": "float32 (N,): arousal in [-1, 1]",
    "pseudo_valence": "float32 (N,): estimated valence (what a VA model would predict)",
    "pseudo_arousal": "float32 (N,): estimated arousal",
    "votes": "int64 (N, C): annotator votes per class (crowd annotation)",
    "crowd_label": "int64 (N,): majority vote of the crowd annotation",
    "ambiguity": "float32 (N,): share of the second class in the blend, 0 = prototypical",
    "intensity": "float32 (N,): expression intensity, 0 = neutral-like, 1 = exaggerated",
    "path": "str (N,): source file of the image, relative to the dataset root",
}


@dataclass
class FERData:
    """One split of a FER dataset, in memory.

    Parameters
    ----------
    images
        uint8 array (N, H, W, 3), RGB.
    labels
        int64 array (N,): the labels the dataset gives (possibly noisy), in ``class_names`` order.
    class_names
        Class names, index = label value.
    columns
        Optional per-sample arrays (first dimension N), see :data:`COLUMNS`.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.class_names = tuple(self.class_names)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.validate()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def validate(self, *, where: object = "dataset") -> None:
        """Check shapes, dtypes and label range; raise :class:`DataError` naming the field."""
        n = self.labels.shape[0]
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise DataError(
                f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}",
                path=where,
            )
        if self.images.shape[0] != n:
            raise DataError(f"{self.images.shape[0]} images but {n} labels", path=where)
        if self.labels.ndim != 1:
            raise DataError(f"labels must be 1-D, got shape {self.labels.shape}", path=where)
        if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels >= self.num_classes))[0])
            raise DataError(
                f"label {int(self.labels[bad])} of sample {bad} is outside 0..{self.num_classes - 1}",
                path=where,
            )
        for name, col in self.columns.items():
            if col.shape[0] != n:
                raise DataError(f"column '{name}' has {col.shape[0]} rows, expected {n}", path=where)

    def subset(self, indices: np.ndarray) -> "FERData":
        """The samples at ``indices`` (a copy), columns included."""
        indices = np.asarray(indices)
        return FERData(
            images=np.ascontiguousarray(self.images[indices]),
            labels=self.labels[indices].copy(),
            class_names=self.class_names,
            columns={k: v[indices].copy() for k, v in self.columns.items()},
        )


def _split_files(root: Path, split: str) -> tuple[Path, Path]:
    return root / f"{split}.images.npy", root / f"{split}.table.npz"


def save_dataset(
    splits: Mapping[str, FERData], root: str | os.PathLike, *, info: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``splits`` (e.g. ``{"train": ..., "test": ...}``) to ``root`` atomically.

    ``root`` must be new, an empty directory or, with ``overwrite=True``, a noisyfer dataset that
    holds nothing but its own files (see :func:`check_dataset_target`); nothing else is ever deleted.
    Folders and files get the permissions the umask allows.
    """
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not splits:
        raise ValueError("save_dataset needs at least one split")
    class_names = {s.class_names for s in splits.values()}
    if len(class_names) != 1:
        raise ValueError(f"splits disagree on class names: {class_names}")
    replacing = check_dataset_target(root, overwrite=overwrite)
    with writing(root):
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        with writing(root):
            os.chmod(tmp, umask_mode(directory=True))  # mkdtemp makes it 0700
            meta = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "class_names": list(next(iter(class_names))),
                "splits": {},
                "info": dict(info or {}),
            }
            for split, data in splits.items():
                data.validate(where=f"split '{split}'")
                images_path, table_path = _split_files(tmp, split)
                np.save(images_path, np.ascontiguousarray(data.images))
                np.savez(table_path, label=data.labels, **data.columns)
                meta["splits"][split] = {
                    "num_samples": len(data),
                    "image_shape": list(data.image_shape),
                    "columns": sorted(data.columns),
                }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            if replacing:
                _replace_directory(tmp, root)
            else:
                if root.is_dir():
                    root.rmdir()  # empty (checked above); os.replace needs the name free or an empty dir
                os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _replace_directory(new: Path, old: Path) -> None:
    """Put directory ``new`` in the place of ``old``: ``old`` is moved aside first, deleted last."""
    aside = Path(tempfile.mkdtemp(prefix=f".{old.name}.old.", dir=old.parent))
    os.replace(old, aside / old.name)
    try:
        os.replace(new, old)
    except BaseException:
        os.replace(aside / old.name, old)
        aside.rmdir()
        raise
    shutil.rmtree(aside)


#: Files a dataset directory may hold besides its splits (``noisyfer synth --preview`` writes one).
#: Files a dataset directory may hold besides its splits (``noisyfer prepare`` writes its log there).
DATASET_EXTRAS = ("meta.json", "preview.png", "prepare_log.jsonl")


def check_dataset_target(root: str | os.PathLike, *, overwrite: bool, flag: str = "overwrite=True") -> bool:
    """Check that a dataset may be written to ``root``; returns whether an existing dataset is replaced.

    Allowed: a new path, an empty directory, and (only with ``overwrite``) a noisyfer dataset holding
    nothing but its own files. Anything else raises :class:`DataError` naming the directory, so a
    mistyped output path never costs a user's files.

    Parameters
    ----------
    flag
        How the caller's user says "replace" (``--force`` on the command line), for the message.
    """
    root = Path(root)
    if not root.exists():
        if root.is_symlink():
            raise DataError("is a broken symbolic link; give a new directory name", path=root)
        return False
    if not root.is_dir():
        raise DataError("exists and is not a directory; give a new directory name", path=root)
    with writing(root, action="read"):
        names = sorted(p.name for p in root.iterdir())
    if not names:
        return False
    if "meta.json" not in names:
        raise DataError(f"is not empty and holds no noisyfer dataset ({_some(names)}); noisyfer writes a "
                        "dataset only into a new or empty directory, or replaces a dataset", path=root)
    meta = read_meta(root)
    own = set(DATASET_EXTRAS) | {name for split in meta.get("splits", {}) for name in
                                 (f"{split}.images.npy", f"{split}.table.npz")}
    foreign = [name for name in names if name not in own]
    if foreign:
        raise DataError(f"holds a noisyfer dataset and other files ({_some(foreign)}); move them away "
                        "before replacing the dataset", path=root)
    if not overwrite:
        raise DataError(f"already holds a noisyfer dataset; give {flag} to replace it", path=root)
    return True


def _some(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def read_meta(root: str | os.PathLike) -> dict:
    """The parsed ``meta.json`` of a dataset directory, checked for format and version."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise DataError("not a noisyfer dataset directory (meta.json missing)", path=Path(root))
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc})", path=path) from None
    if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
        raise DataError(
            f"expected format '{FORMAT_NAME}' version {FORMAT_VERSION}, "
            f"got '{meta.get('format')}' version {meta.get('version')}",
            path=path,
        )
    return meta


def load_split(root: str | os.PathLike, split: str, *, mmap: bool = True) -> FERData:
    """Load one split; ``mmap=True`` maps the image array instead of reading it."""
    root = Path(root)
    meta = read_meta(root)
    if split not in meta["splits"]:
        raise DataError(
            f"no split '{split}' (available: {', '.join(meta['splits'])})", path=root / "meta.json"
        )
    images_path, table_path = _split_files(root, split)
    for p in (images_path, table_path):
        if not p.is_file():
            raise DataError("file of the dataset is missing", path=p)
    images = np.load(images_path, mmap_mode="r" if mmap else None)
    with np.load(table_path, allow_pickle=False) as table:
        columns = {k: table[k] for k in table.files}
    labels = columns.pop("label")
    return FERData(images=images, labels=labels, class_names=tuple(meta["class_names"]), columns=columns)


def load_dataset(root: str | os.PathLike, *, mmap: bool = True) -> dict[str, FERData]:
    """Load every split of a dataset directory."""
    meta = read_meta(root)
    return {split: load_split(root, split, mmap=mmap) for split in meta["splits"]}
