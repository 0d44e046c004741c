"""Class-folder datasets: any ``root/<split>/<class>/<image>`` or ``root/<class>/<image>`` tree
(``folder``) and SFEW (``sfew``).

``folder`` layouts:

* ``root/train/<class>/*`` and ``root/test/<class>/*`` (``data.train_dir``, ``data.test_dir``);
* ``root/train/<class>/*`` alone, or ImageFolder's ``root/<class>/*`` without split folders: the test
  split is then held out of the images, stratified and seeded (``data.test_fraction``, ``data.split_seed``;
  see :func:`noisyfer.data.datasets.hold_out_test`).

Classes (``data.classes``): ``auto`` (default) takes the class folders found in the training folder. Names of
expressions (noisyfer's or the usual spellings: ``Angry``, ``happy``, ``Sad`` ...) become noisyfer's names in
its order (neutral, happiness, sadness, surprise, fear, disgust, anger, contempt); any other names
(``positive``, ``negative``, ...) are the classes, lower-cased, in sorted order, as torchvision's
ImageFolder does. Numbered folders ``1`` ... ``7`` are RAF-DB's codes (1 surprise, 2 fear, 3 disgust,
4 happiness, 5 sadness, 6 anger, 7 neutral) unless ``data.folder_codes`` says otherwise (``fer2013``:
0 anger ... 6 neutral; ``affectnet``: 0 neutral ... 7 contempt; or a mapping ``{1: positive, ...}``).
``classes: 7`` or ``8`` expects the basic expressions; a list names the classes in index order.

Images are the files directly in a class folder whose name ends in an image suffix (``.jpg``, ``.png``,
...), read in sorted path order; other entries are listed in the dataset's info as ignored. With
``classes`` given, a folder that is not one of them stops the build (``data.on_bad=skip`` leaves its
images out and records it); a class without any training image stops the build.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig
from ...errors import DataError, UserError
from ...registry import register_dataset
from ..classes import BASIC8, class_name
from .affectnet import AFFECTNET_CODES
from .decode import IMAGE_SUFFIXES
from .fer2013 import FER2013_CODES
from .options import ReaderOptions, image_size_of
from .orders import SFEW_ORDER, basic_classes
from .rafdb import RAFDB_CODES
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
        ``auto`` (the class folders found), 7 (basic expressions), 8 (with contempt), or a list of
        class names in index order (any names, e.g. [negative, neutral, positive]).
    folder_codes
        What numbered class folders mean: ``rafdb`` (default for 1..7), ``fer2013``, ``affectnet``, or a
        mapping {folder: class name}.
    train_dir, test_dir
        Split folders under ``data.root``. Without a ``train_dir`` folder the class folders are directly
        under ``data.root``; without a ``test_dir`` folder the test split is held out of the images.
    val_dir
        Optional validation split folder.
    """

    classes: int | list | str = "auto"
    folder_codes: str | dict | None = None
    train_dir: str = "train"
    test_dir: str = "test"
    val_dir: str | None = None

    def native_order(self):
        if isinstance(self.classes, list):
            return [class_name(str(n)) for n in self.classes]
        return None if self.classes == "auto" else basic_classes(self.classes)

    def __post_init__(self) -> None:
        if isinstance(self.classes, str) and self.classes != "auto":
            raise ValueError(f"classes must be auto, 7, 8 or a list of class names, got {self.classes!r}")
        if isinstance(self.classes, list):
            names = self.native_order()
            if len(names) < 2 or len(set(names)) != len(names):
                raise ValueError(f"classes must list at least 2 distinct class names, got {self.classes}")
        elif self.classes != "auto" and self.classes not in (7, 8):
            raise ValueError(f"classes must be auto, 7, 8 or a list of class names, got {self.classes}")
        if isinstance(self.folder_codes, str) and self.folder_codes not in FOLDER_CODES:
            raise ValueError(f"folder_codes must be {', '.join(FOLDER_CODES)} or a mapping {{folder: class}}, "
                             f"got {self.folder_codes!r}")
        super().__post_init__()


#: Named tables of numbered class folders (``data.folder_codes``).
FOLDER_CODES = {"rafdb": RAFDB_CODES, "fer2013": FER2013_CODES, "affectnet": AFFECTNET_CODES}


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


def folder_classes(folders: list[str], options: FolderOptions, where: Path) -> tuple[dict[str, str], str]:
    """``({folder: class name}, how the names were read)`` of the class folders found (``classes: auto``)."""
    codes = options.folder_codes
    numbered = bool(folders) and all(f.strip().isdigit() for f in folders)
    if numbered and codes is None and {int(f) for f in folders} <= set(RAFDB_CODES):
        codes = "rafdb"
    if codes is not None:
        table = {str(k).strip(): v for k, v in (FOLDER_CODES[codes] if isinstance(codes, str) else codes).items()}
        unknown = [f for f in folders if f.strip() not in table]
        if unknown:
            raise DataError(f"class folder(s) {', '.join(unknown)} are not in data.folder_codes "
                            f"({codes if isinstance(codes, str) else 'the mapping given'}: {', '.join(table)})", path=where)
        how = (f"numbered folders read as {codes}'s codes" if isinstance(codes, str) else "data.folder_codes")
        return {f: class_name(table[f.strip()]) for f in folders}, how
    if numbered:
        raise DataError(f"class folders are numbered ({', '.join(folders)}) but not RAF-DB's 1..7: say what each "
                        "number is with data.folder_codes=fer2013 (0 anger ... 6 neutral), affectnet (0 neutral ... "
                        "7 contempt) or a mapping {0: name, 1: name, ...}", path=where)
    return {f: class_name(f) for f in folders}, "folder names"


def auto_order(names: list[str]) -> list[str]:
    """Expressions in noisyfer's order (neutral, happiness, ...); any other names sorted."""
    if all(n in BASIC8 for n in names):
        return [n for n in BASIC8 if n in names]
    return sorted(names)


def list_class_folders(root: Path, split_dirs: dict[str, str | None], order: list[str], report: ReadReport,
                       folder_names: dict[str, str] | None = None) -> Manifest:
    """The images of every class folder of every split folder (``None``: the class folders are directly
    in ``root``), in sorted path order. ``folder_names`` maps folder -> class (default :func:`class_name`)."""
    index = {name: i for i, name in enumerate(order)}
    manifest = Manifest()
    for split, directory in split_dirs.items():
        split_root = root / directory if directory else root
        if not split_root.is_dir():
            raise DataError(f"split folder '{directory}' not found (the {split} split)", path=split_root)
        for entry in sorted(os.scandir(split_root), key=lambda e: e.name):
            where = f"{directory}/{entry.name}" if directory else entry.name
            if not entry.is_dir():
                report.ignore(where)
                continue
            if folder_names is not None and entry.name in folder_names:
                name = folder_names[entry.name]
            else:
                try:
                    name = class_name(entry.name)
                except UserError:
                    name = None
            if name is None or name not in index:
                report.bad(Path(entry.path), None, f"folder '{entry.name}' is not one of the classes "
                           f"({', '.join(order)}; data.classes)")
                continue
            for image in sorted(os.scandir(entry.path), key=lambda e: e.name):
                rel = f"{where}/{image.name}"
                if image.is_file() and image.name.lower().endswith(IMAGE_SUFFIXES):
                    manifest.add(split, rel, index[name], Path(entry.path), None)
                else:
                    report.ignore(rel)
    return manifest


def _read_folders(reader: str, config: DataConfig, options: ReaderOptions, split_dirs: dict[str, str | None],
                  info: dict, folder_names: dict[str, str] | None = None) -> ReadSplits:
    root = dataset_root(config.root, reader, "the folder holding the split folders")
    report = ReadReport(reader, config.on_bad)
    manifest = list_class_folders(root, split_dirs, list(options.class_order), report, folder_names)
    spec = ReadSpec(reader=reader, root=root, class_names=options.class_order,
                    image_size=image_size_of(config, DEFAULT_SIZE), splits=tuple(split_dirs),
                    settings={"reader_version": READER_VERSION, "split_dirs": split_dirs,
                              "folder_names": folder_names}, label_files=[],
                    workers=options.workers, info={**info, "split_dirs": split_dirs, "class_names": list(options.class_order)},
                    split_sources={split: root / (folder or "") for split, folder in split_dirs.items()})
    return read_image_files(spec, manifest, report, config)


@register_dataset("folder", options=FolderOptions)
def folder(*, config: DataConfig, options: FolderOptions) -> ReadSplits:
    """Class folders of any names: root/<train|test>/<class>/*.jpg, or root/<class>/*.jpg; decoded once and cached."""
    root = dataset_root(config.root, "folder", "the folder holding the class (or split) folders")
    train_dir: str | None = options.train_dir
    if not (root / options.train_dir).is_dir():
        train_dir = None  # ImageFolder's root/<class>/*: no split folders
        names = {e.name.lower() for e in os.scandir(root) if e.is_dir()}
        splits_seen = sorted(names & {"train", "training", "test", "testing", "val", "valid", "validation"})
        if splits_seen:
            raise DataError(f"no training folder '{options.train_dir}' but split-like folders "
                            f"({', '.join(splits_seen)}): name them with data.train_dir / data.test_dir", path=root)
    split_dirs = {"train": train_dir}
    if train_dir is not None and (root / options.test_dir).is_dir():
        split_dirs["test"] = options.test_dir
    if options.val_dir:
        split_dirs["val"] = options.val_dir
    info = {"source": "class folders", "layout": "split folders" if train_dir else "class folders in data.root"}
    folder_names = None
    if options.classes == "auto" or options.folder_codes is not None:
        class_root = root / train_dir if train_dir else root
        folders = sorted(e.name for e in os.scandir(class_root) if e.is_dir())
        folder_names, how = folder_classes(folders, options, class_root)
        info["classes_from"] = how
        info["class_folders"] = folder_names
    if options.classes == "auto":
        found = list(dict.fromkeys(folder_names.values()))
        if len(found) != len(folder_names):
            raise DataError(f"two class folders name the same class ({folder_names})", path=class_root)
        if len(found) < 2:
            raise DataError(f"expected at least 2 class folders, found {len(found)}", path=class_root)
        options = dataclasses.replace(options, classes=auto_order(found))  # resolves data.class_order
    return _read_folders("folder", config, options, split_dirs, info, folder_names)


@register_dataset("sfew", options=SfewOptions)
def sfew(*, config: DataConfig, options: SfewOptions) -> ReadSplits:
    """SFEW 2.0 (Train/ and Val/ with Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise), decoded and cached."""
    return _read_folders("sfew", config, options, {"train": options.train_dir, "test": options.test_dir},
                         {"source": "SFEW 2.0"})
