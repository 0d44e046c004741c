"""Class-folder datasets: any ``root/<split>/<class>/<image>`` tree (``folder``) and SFEW (``sfew``).

Class folders are named after the expression (noisyfer's names or the usual spellings: ``Angry``,
``happy``, ``Sad`` ...; see :data:`noisyfer.data.classes.ALIASES`). Images are the files directly in a
class folder whose name ends in an image suffix (``.jpg``, ``.png``, ...), read in sorted path order;
other entries are listed in the dataset's info as ignored. A folder that names no expression is a bad
item; a class without any training image stops the build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig
from ...errors import DataError, UserError
from ...registry import register_dataset
from ..classes import canonical_class_name
from .decode import IMAGE_SUFFIXES
from .options import ReaderOptions, image_size_of
from .orders import SFEW_ORDER, basic_classes
from .pipeline import Manifest, ReadSpec, read_image_files
from .report import ReadReport, ReadSplits
from .textfiles import dataset_root

#: Images of varying size are resized to this side unless data.image_size is set.
DEFAULT_SIZE = 112
READER_VERSION = 1


@dataclass
class FolderOptions(ReaderOptions):
    """Options of the ``folder`` dataset.

    Attributes
    ----------
    classes
        7 (basic expressions) or 8 (with contempt): the class folders expected.
    train_dir, test_dir
        Split folders under ``data.root``.
    val_dir
        Optional validation split folder.
    """

    classes: int = 7
    train_dir: str = "train"
    test_dir: str = "test"
    val_dir: str | None = None

    def native_order(self):
        return basic_classes(self.classes)

    def __post_init__(self) -> None:
        if self.classes not in (7, 8):
            raise ValueError(f"classes must be 7 or 8, got {self.classes}")
        super().__post_init__()


@dataclass
class SfewOptions(ReaderOptions):
    """Options of the ``sfew`` dataset (SFEW 2.0: ``Train/`` and ``Val/`` with seven class folders).

    Attributes
    ----------
    train_dir, test_dir
        Split folders; SFEW's test labels are not public, so ``Val`` is the test split.
    """

    train_dir: str = "Train"
    test_dir: str = "Val"

    def native_order(self):
        return SFEW_ORDER


def list_class_folders(root: Path, split_dirs: dict[str, str], order: list[str], report: ReadReport) -> Manifest:
    """The images of every class folder of every split folder, in sorted path order."""
    index = {name: i for i, name in enumerate(order)}
    manifest = Manifest()
    for split, directory in split_dirs.items():
        split_root = root / directory
        if not split_root.is_dir():
            raise DataError(f"split folder '{directory}' not found (the {split} split)", path=split_root)
        for entry in sorted(os.scandir(split_root), key=lambda e: e.name):
            if not entry.is_dir():
                report.ignore(f"{directory}/{entry.name}")
                continue
            try:
                name = canonical_class_name(entry.name)
            except UserError:
                name = None
            if name is None or name not in index:
                expected = ", ".join(order)
                report.bad(Path(entry.path), None, f"folder '{entry.name}' is not one of the classes ({expected}); "
                           f"its images are left out")
                continue
            for image in sorted(os.scandir(entry.path), key=lambda e: e.name):
                rel = f"{directory}/{entry.name}/{image.name}"
                if image.is_file() and image.name.lower().endswith(IMAGE_SUFFIXES):
                    manifest.add(split, rel, index[name], Path(entry.path), None)
                else:
                    report.ignore(rel)
    return manifest


def _read_folders(reader: str, config: DataConfig, options: ReaderOptions, split_dirs: dict[str, str],
                  info: dict) -> ReadSplits:
    root = dataset_root(config.root, reader, "the folder holding the split folders")
    report = ReadReport(reader, config.on_bad)
    manifest = list_class_folders(root, split_dirs, list(options.class_order), report)
    spec = ReadSpec(reader=reader, root=root, class_names=options.class_order,
                    image_size=image_size_of(config, DEFAULT_SIZE), splits=tuple(split_dirs),
                    settings={"reader_version": READER_VERSION, "split_dirs": split_dirs}, label_files=[],
                    workers=options.workers, info={**info, "split_dirs": split_dirs},
                    split_sources={split: root / folder for split, folder in split_dirs.items()})
    return read_image_files(spec, manifest, report, config)


@register_dataset("folder", options=FolderOptions)
def folder(*, config: DataConfig, options: FolderOptions) -> ReadSplits:
    """Any root/<train|test>/<class>/*.jpg tree with expression-named class folders, decoded once and cached."""
    split_dirs = {"train": options.train_dir, "test": options.test_dir}
    if options.val_dir:
        split_dirs["val"] = options.val_dir
    return _read_folders("folder", config, options, split_dirs, {"source": "class folders"})


@register_dataset("sfew", options=SfewOptions)
def sfew(*, config: DataConfig, options: SfewOptions) -> ReadSplits:
    """SFEW 2.0 (Train/ and Val/ with Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise), decoded and cached."""
    return _read_folders("sfew", config, options, {"train": options.train_dir, "test": options.test_dir},
                         {"source": "SFEW 2.0"})
