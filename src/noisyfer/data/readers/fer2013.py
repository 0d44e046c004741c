"""FER2013 as distributed: ``fer2013.csv`` with ``emotion,pixels,Usage`` rows of 48x48 gray faces.

Splits: ``train`` = Training, ``test`` = PrivateTest and ``val`` = PublicTest (swap the two test sets
with ``data.test_usage=PublicTest``). Gray faces are replicated to RGB. Each sample keeps the 0-based
index of its data row in the CSV (``source_row``), which is also how FERPlus rows are matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import DataConfig
from ...errors import DataError
from ...registry import register_dataset
from ..datasets import resize_images
from ..format import FERData
from .options import ReaderOptions, image_size_of
from .orders import FER2013_ORDER, code_lookup, describe_mapping
from .pipeline import ReadSpec, cached_read
from .report import ReadReport, ReadSplits
from .textfiles import CsvRows, dataset_root, parse_int, relative_name

#: FER2013's label codes.
FER2013_CODES = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral"}
USAGES = ("Training", "PublicTest", "PrivateTest")
SIDE = 48
NUM_PIXELS = SIDE * SIDE
READER_VERSION = 1


@dataclass
class Fer2013Options(ReaderOptions):
    """Options of the ``fer2013`` dataset.

    Attributes
    ----------
    file
        The CSV, relative to ``data.root`` (``icml_face_data.csv`` is the same table).
    test_usage
        ``PrivateTest`` (default: the ``test`` split, PublicTest is ``val``) or ``PublicTest``.
    """

    file: str = "fer2013.csv"
    test_usage: str = "PrivateTest"

    def native_order(self):
        return FER2013_ORDER

    def __post_init__(self) -> None:
        if self.test_usage not in ("PrivateTest", "PublicTest"):
            raise ValueError(f"test_usage must be PrivateTest or PublicTest, got {self.test_usage!r}")
        super().__post_init__()


def split_of_usage(test_usage: str) -> dict[str, str]:
    """Usage -> split name (``train``, ``val``, ``test``)."""
    other = "PublicTest" if test_usage == "PrivateTest" else "PrivateTest"
    return {"Training": "train", test_usage: "test", other: "val"}


def parse_pixels(text: str) -> np.ndarray | str:
    """A FER2013 pixel string as uint8 (48, 48), or the reason it is not one."""
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")  # C parser, ~25x faster than split + int
    except ValueError:
        bad = next((t for t in text.split() if parse_int(t) is None), text[:20])
        return f"pixel value '{bad}' is not an integer"
    if values.size != NUM_PIXELS:
        return f"pixel string has {values.size} values, expected {NUM_PIXELS} (48x48)"
    if values.min() < 0 or values.max() > 255:
        bad = int(values[(values < 0) | (values > 255)][0])
        return f"pixel value {bad} is outside 0..255"
    return values.astype(np.uint8).reshape(SIDE, SIDE)


@dataclass
class Fer2013Row:
    """One data row of fer2013.csv that parsed (``code`` may be None when only the emotion was bad)."""

    index: int
    line: int
    code: int | None
    usage: str
    gray: np.ndarray


def read_fer2013_csv(path: Path, report: ReadReport, *, need_emotion: bool = True) -> tuple[list[Fer2013Row], int]:
    """Every well-formed data row of a FER2013 CSV, and the number of data rows.

    Bad rows (wrong field count, emotion not in 0..6, unknown Usage, bad pixel string) go to
    ``report``. With ``need_emotion=False`` (FERPlus) a bad emotion leaves ``code=None`` instead.
    """
    rows = CsvRows(path, required=("emotion", "pixels", "Usage"))
    col_e, col_p, col_u = rows.columns["emotion"], rows.columns["pixels"], rows.columns["Usage"]
    out, count = [], 0
    for line, fields in rows:
        index, count = count, count + 1
        if len(fields) != rows.width:
            report.bad(path, line, f"expected {rows.width} fields (emotion,pixels,Usage), got {len(fields)}")
            continue
        usage = fields[col_u].strip()
        if usage not in USAGES:
            report.bad(path, line, f"Usage '{usage}' is not one of {', '.join(USAGES)}")
            continue
        code = parse_int(fields[col_e])
        if code is None or code not in FER2013_CODES:
            if need_emotion:
                what = "not an integer" if code is None else "outside 0..6"
                report.bad(path, line, f"emotion '{fields[col_e].strip()}' is {what}")
                continue
            code = None
        gray = parse_pixels(fields[col_p])
        if isinstance(gray, str):
            report.bad(path, line, gray)
            continue
        out.append(Fer2013Row(index=index, line=line, code=code, usage=usage, gray=gray))
    return out, count


def gray_to_rgb(gray: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, 48, 48) gray faces as (N, size, size, 3) RGB."""
    rgb = np.repeat(gray[..., None], 3, axis=3) if len(gray) else np.zeros((0, SIDE, SIDE, 3), dtype=np.uint8)
    return resize_images(rgb, size)


def assemble(rows: list, labels: np.ndarray, splits: dict[str, str], class_names, size: int,
             columns: dict[str, np.ndarray]) -> dict[str, FERData]:
    """Splits of FER2013-style rows (in row order) with their labels and extra columns."""
    usage = np.asarray([r.usage for r in rows]) if rows else np.zeros(0, dtype=str)
    gray = np.stack([r.gray for r in rows]) if rows else np.zeros((0, SIDE, SIDE), dtype=np.uint8)
    source_row = np.asarray([r.index for r in rows], dtype=np.int64)
    out = {}
    for name_of_usage, split in splits.items():
        take = np.flatnonzero(usage == name_of_usage)
        out[split] = FERData(images=gray_to_rgb(gray[take], size), labels=labels[take], class_names=tuple(class_names),
                             columns={"source_row": source_row[take], **{k: v[take] for k, v in columns.items()}})
    return out


@register_dataset("fer2013", options=Fer2013Options)
def fer2013(*, config: DataConfig, options: Fer2013Options) -> ReadSplits:
    """FER2013 (fer2013.csv: emotion, 48x48 pixel string, Usage), decoded once and cached."""
    root = dataset_root(config.root, "fer2013", "FER2013 (the folder holding fer2013.csv)")
    path = root / options.file
    if not path.is_file():
        raise DataError(f"FER2013 file {options.file} not found", path=path)
    usage_split = split_of_usage(options.test_usage)
    lut = code_lookup(FER2013_CODES, options.class_order)
    size = image_size_of(config, SIDE)
    spec = ReadSpec(reader="fer2013", root=root, class_names=options.class_order, image_size=size,
                    splits=("train", "val", "test"),
                    settings={"reader_version": READER_VERSION, "file": options.file, "usage": usage_split},
                    label_files=[path], workers=options.workers,
                    info={"source": "FER2013", "usage_to_split": usage_split,
                          "label_mapping": describe_mapping(FER2013_CODES, options.class_order)})

    def build(report: ReadReport) -> dict[str, FERData]:
        rows, _ = read_fer2013_csv(path, report)
        labels = lut[np.asarray([r.code for r in rows], dtype=np.int64)] if rows else np.zeros(0, dtype=np.int64)
        return assemble(rows, labels, usage_split, options.class_order, size, {})

    report = ReadReport("fer2013", config.on_bad)
    st = path.stat()
    sources = ([relative_name(path, root)], np.array([st.st_size]), np.array([st.st_mtime_ns]))
    return cached_read(spec, config, sources, report, build)
