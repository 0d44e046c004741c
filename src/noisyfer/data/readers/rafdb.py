"""RAF-DB, basic-emotion release, read as distributed.

Layout under ``data.root``::

    EmoLabel/list_patition_label.txt      lines 'train_00001.jpg 5' (labels 1..7, see RAFDB_CODES)
    Image/aligned/train_00001_aligned.jpg aligned 100x100 faces (used when present)
    Image/original/train_00001.jpg        original images (used when Image/aligned is missing)

The split comes from the file name prefix (``train_`` / ``test_``). Labels are produced in
``data.class_order`` (default: RAF-DB's own order, surprise = 0 ... neutral = 6); the ``path`` column
keeps each image's path relative to the root, which is how noisy-label files in the same line format
(``noise.file=...``) are matched to the training samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import DataConfig
from ...errors import DataError
from ...registry import register_dataset
from .options import ReaderOptions, image_size_of
from .orders import RAFDB_ORDER, code_lookup, describe_mapping
from .pipeline import Manifest, ReadSpec, read_image_files
from .report import ReadReport, ReadSplits
from .textfiles import dataset_root, drop_duplicates, parse_int, read_lines

#: RAF-DB's label codes.
RAFDB_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
LABEL_FILE = "EmoLabel/list_patition_label.txt"
IMAGE_DIRS = {"aligned": "Image/aligned", "original": "Image/original"}
SPLIT_PREFIXES = {"train_": "train", "test_": "test"}
#: Aligned RAF-DB faces are 100x100.
DEFAULT_SIZE = 100
READER_VERSION = 1


@dataclass
class RafdbOptions(ReaderOptions):
    """Options of the ``rafdb`` dataset.

    Attributes
    ----------
    images
        ``auto`` (``Image/aligned`` when present, else ``Image/original``), ``aligned`` or ``original``.
    """

    images: str = "auto"

    def native_order(self):
        return RAFDB_ORDER

    def __post_init__(self) -> None:
        if self.images not in ("auto", "aligned", "original"):
            raise ValueError(f"images must be auto, aligned or original, got {self.images!r}")
        super().__post_init__()


def parse_label_lines(path, report: ReadReport, *, codes=RAFDB_CODES) -> list[tuple[int, str, int]]:
    """``(line, image name, code)`` of every well-formed line of a RAF-DB-style label file.

    Malformed lines (not two fields, a label that is no integer or out of range) go to ``report``;
    blank lines are ignored; a UTF-8 BOM and CRLF line ends are accepted.
    """
    low, high = min(codes), max(codes)
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            report.bad(path, number, f"expected '<image name> <label {low}..{high}>', got '{line.strip()}'")
            continue
        name, raw = fields
        code = parse_int(raw)
        if code is None:
            report.bad(path, number, f"label '{raw}' of '{name}' is not an integer", item=name)
        elif code not in codes:
            report.bad(path, number, f"label {code} of '{name}' is outside {low}..{high}", item=name)
        else:
            rows.append((number, name, code))
    return rows


def image_key(name: str) -> str:
    """The RAF-DB name of an image file: ``train_00001_aligned.jpg`` and ``train_00001.jpg`` -> ``train_00001.jpg``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    if stem.endswith("_aligned"):
        stem = stem[: -len("_aligned")]
    return f"{stem}.{suffix}" if dot else stem


def _image_layout(root, choice: str) -> str:
    if choice != "auto":
        if not (root / IMAGE_DIRS[choice]).is_dir():
            raise DataError(f"data.images={choice} but the directory {IMAGE_DIRS[choice]} is missing", path=root)
        return choice
    for layout in ("aligned", "original"):
        if (root / IMAGE_DIRS[layout]).is_dir():
            return layout
    raise DataError("no image directory: expected Image/aligned (or Image/original)", path=root)


def _image_path(name: str, layout: str) -> str:
    if layout == "original":
        return f"{IMAGE_DIRS['original']}/{name}"
    stem, dot, suffix = name.rpartition(".")
    return f"{IMAGE_DIRS['aligned']}/{stem}_aligned.{suffix}" if dot else f"{IMAGE_DIRS['aligned']}/{name}_aligned"


@register_dataset("rafdb", options=RafdbOptions)
def rafdb(*, config: DataConfig, options: RafdbOptions) -> ReadSplits:
    """RAF-DB basic emotions (EmoLabel/list_patition_label.txt + Image/aligned), decoded once and cached."""
    root = dataset_root(config.root, "rafdb", "RAF-DB (the folder holding EmoLabel/ and Image/)")
    label_file = root / LABEL_FILE
    if not label_file.is_file():
        raise DataError(f"RAF-DB label file {LABEL_FILE} not found", path=label_file)
    layout = _image_layout(root, options.images)
    report = ReadReport("rafdb", config.on_bad)
    rows = parse_label_lines(label_file, report)
    splits = []
    kept = []
    for row in rows:
        prefix = next((p for p in SPLIT_PREFIXES if row[1].startswith(p)), None)
        if prefix is None:
            report.bad(label_file, row[0], f"cannot tell the split of '{row[1]}': RAF-DB names start with "
                       f"{' or '.join(SPLIT_PREFIXES)}", item=row[1])
            continue
        kept.append(row)
        splits.append(SPLIT_PREFIXES[prefix])
    keep = drop_duplicates([r[1] for r in kept], [r[2] for r in kept], [r[0] for r in kept], path=label_file,
                           report=report)
    lut = code_lookup(RAFDB_CODES, options.class_order)
    manifest = Manifest()
    for i in keep:
        number, name, code = kept[i]
        manifest.add(splits[i], _image_path(name, layout), int(lut[code]), label_file, number)
    spec = ReadSpec(
        reader="rafdb", root=root, class_names=options.class_order, image_size=image_size_of(config, DEFAULT_SIZE),
        splits=("train", "test"), settings={"reader_version": READER_VERSION, "images": layout},
        label_files=[label_file], workers=options.workers,
        info={"source": "RAF-DB basic emotions", "images": IMAGE_DIRS[layout],
              "label_mapping": describe_mapping(RAFDB_CODES, options.class_order)},
    )
    return read_image_files(spec, manifest, report, config)
