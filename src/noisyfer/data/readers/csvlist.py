"""Image lists in CSV files (``csv``): ``path,label`` or ``path,label,valence,arousal`` per split.

``path`` is relative to ``data.root`` (or absolute); ``label`` is a class name (``happiness``,
``Happy``, ...) or an integer index into ``data.class_order`` (default noisyfer's order: neutral,
happiness, sadness, surprise, fear, disgust, anger[, contempt]; with ``data.classes`` a list, such as
``[negative, neutral, positive]``, those classes in that order), which the run's ``config.yaml``
shows explicitly. Valence and arousal, when present, must lie in [-1, 1]. Without a test list (no
``test.csv``) the test split is held out of the training list (``data.test_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig
from ...errors import DataError, UserError
from ...registry import register_dataset
from ..classes import class_name
from .options import ReaderOptions, image_size_of
from .orders import basic_classes
from .pipeline import Manifest, ReadSpec, read_image_files
from .report import ReadReport, ReadSplits
from .textfiles import CsvRows, dataset_root, drop_duplicates, parse_float, parse_int

HEADERS = (("path", "label"), ("path", "label", "valence", "arousal"))
DEFAULT_SIZE = 112
READER_VERSION = 1


@dataclass
class CsvOptions(ReaderOptions):
    """Options of the ``csv`` dataset.

    Attributes
    ----------
    classes
        7 (basic expressions), 8 (with contempt), or a list of class names in index order (any names).
    train_file, test_file
        The split lists, relative to ``data.root``; without a test list the test split is held out.
    val_file
        Optional validation list.
    """

    classes: int | list = 7
    train_file: str = "train.csv"
    test_file: str | None = "test.csv"
    val_file: str | None = None

    def native_order(self):
        if isinstance(self.classes, list):
            return [class_name(str(n)) for n in self.classes]
        return basic_classes(self.classes)

    def __post_init__(self) -> None:
        if isinstance(self.classes, list):
            if len(self.native_order()) < 2 or len(set(self.native_order())) != len(self.classes):
                raise ValueError(f"classes must list at least 2 distinct class names, got {self.classes}")
        elif self.classes not in (7, 8):
            raise ValueError(f"classes must be 7, 8 or a list of class names, got {self.classes}")
        super().__post_init__()


def _label(text: str, order: list[str]) -> int | str:
    """Class index of a label field, or the reason it is not one."""
    value = parse_int(text)
    if value is not None:
        return value if 0 <= value < len(order) else f"label {value} is outside 0..{len(order) - 1} (data.class_order)"
    try:
        name = class_name(text)
    except UserError:
        return f"label '{text.strip()}' is neither a class index nor a class name"
    return order.index(name) if name in order else f"class '{name}' is not among {order} (data.classes)"


def read_list(path: Path, split: str, order: list[str], report: ReadReport, rows: list) -> None:
    first = CsvRows(path, required=("path", "label"))
    names = sorted(first.columns, key=first.columns.get)
    if tuple(names) not in HEADERS:
        first.close()
        raise DataError(f"wrong header '{','.join(names)}': expected path,label or path,label,valence,arousal",
                        path=path, line=1)
    with_va = len(names) == 4
    for line, fields in first:
        if len(fields) != len(names):
            report.bad(path, line, f"expected {len(names)} fields ({','.join(names)}), got {len(fields)}")
            continue
        rel = fields[0].strip()
        label = _label(fields[1], order)
        if not rel:
            report.bad(path, line, "empty path")
            continue
        if isinstance(label, str):
            report.bad(path, line, label, item=rel)
            continue
        values = {}
        if with_va:
            va = [parse_float(v) for v in fields[2:4]]
            if any(v is None or not -1.0 <= v <= 1.0 for v in va):
                report.bad(path, line, f"valence/arousal ({fields[2].strip()}, {fields[3].strip()}) must be numbers "
                           f"in [-1, 1]", item=rel)
                continue
            values = {"valence": va[0], "arousal": va[1]}
        rows.append((split, rel, label, line, path, values))


@register_dataset("csv", options=CsvOptions)
def csv_list(*, config: DataConfig, options: CsvOptions) -> ReadSplits:
    """Images listed in train.csv / test.csv (path,label[,valence,arousal]), decoded once and cached."""
    root = dataset_root(config.root, "csv", "the folder holding the CSV lists")
    files = {"train": options.train_file}
    if options.test_file and (options.test_file != "test.csv" or (root / options.test_file).is_file()):
        files["test"] = options.test_file  # the default test.csv may be absent: the test split is then held out
    if options.val_file:
        files["val"] = options.val_file
    order = list(options.class_order)
    report = ReadReport("csv", config.on_bad)
    rows: list = []
    paths = {}
    for split, name in files.items():
        paths[split] = root / name
        if not paths[split].is_file():
            raise DataError(f"list of the {split} split not found", path=paths[split])
        read_list(paths[split], split, order, report, rows)
    keep = drop_duplicates([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], path=[r[4] for r in rows],
                           report=report)
    if len({len(r[5]) for r in rows}) > 1:
        raise DataError("some lists have valence,arousal columns and others do not", path=root)
    manifest = Manifest()
    for i in keep:
        split, rel, label, line, path, values = rows[i]
        manifest.add(split, rel, label, path, line, **values)
    spec = ReadSpec(reader="csv", root=root, class_names=order, image_size=image_size_of(config, DEFAULT_SIZE),
                    splits=tuple(files), settings={"reader_version": READER_VERSION, "files": files},
                    label_files=list(paths.values()), workers=options.workers, split_sources=dict(paths),
                    info={"source": "CSV lists", "files": files,
                          "label_mapping": {str(i): f"{n} -> {i}" for i, n in enumerate(order)}})
    return read_image_files(spec, manifest, report, config)
