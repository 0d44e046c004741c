"""AffectNet (manually annotated part) as distributed: two CSVs and a folder of images.

Under ``data.root``, ``training.csv`` and ``validation.csv`` (directly or in
``Manually_Annotated_file_lists/``) with the columns::

    subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal

and the images under ``Manually_Annotated_Images/`` (or ``Manually_Annotated/Manually_Annotated_Images/``).
``training.csv`` is the ``train`` split and ``validation.csv`` the ``test`` split (AffectNet's test set
is not public). Expression codes: 0 neutral, 1 happiness, 2 sadness, 3 surprise, 4 fear, 5 disgust,
6 anger, 7 contempt, 8 none, 9 uncertain, 10 no-face; rows with 8-10 are excluded (and contempt with
``data.classes=7``), each exclusion counted. Valence and arousal (in [-1, 1]) are kept as columns.

Each image is cropped to its face box (``data.crop=true``; set ``false`` for copies whose images are
already the face crops) and resized to ``data.image_size`` (default 112: AffectNet's images vary in
size, and 112 keeps the 280k training faces at about 10 GB in the cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig
from ...errors import DataError
from ...registry import register_dataset
from .options import ReaderOptions, image_size_of
from .orders import AFFECTNET_ORDER, code_lookup, describe_mapping
from .pipeline import Manifest, ReadSpec, read_image_files
from .report import ReadReport, ReadSplits
from .textfiles import CsvRows, dataset_root, drop_duplicates, find_file, parse_float, parse_int

#: AffectNet's expression codes (8-10 carry no expression class).
AFFECTNET_CODES = {0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger",
                   7: "contempt", 8: "none", 9: "uncertain", 10: "no-face"}
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression", "valence",
           "arousal")
LIST_DIRS = ("", "Manually_Annotated_file_lists/")
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images")
DEFAULT_SIZE = 112
READER_VERSION = 1


@dataclass
class AffectnetOptions(ReaderOptions):
    """Options of the ``affectnet`` dataset.

    Attributes
    ----------
    classes
        8 (with contempt) or 7 (contempt rows excluded).
    crop
        Crop every image to its face box (``face_x``, ``face_y``, ``face_width``, ``face_height``).
    train_file, test_file
        CSV names, looked up in ``data.root`` and in ``Manually_Annotated_file_lists/``.
    """

    classes: int = 8
    crop: bool = True
    train_file: str = "training.csv"
    test_file: str = "validation.csv"

    def native_order(self):
        return AFFECTNET_ORDER[:self.classes]

    def __post_init__(self) -> None:
        if self.classes not in (7, 8):
            raise ValueError(f"classes must be 7 or 8, got {self.classes}")
        super().__post_init__()


def _read_csv(path: Path, split: str, image_dir: str, lut, *, crop: bool, report: ReadReport, rows: list) -> None:
    table = CsvRows(path, required=COLUMNS)
    col = table.columns
    for line, fields in table:
        if len(fields) != table.width:
            report.bad(path, line, f"expected {table.width} fields, got {len(fields)}")
            continue
        rel = fields[col["subDirectory_filePath"]].strip()
        code = parse_int(fields[col["expression"]])
        if not rel:
            report.bad(path, line, "empty subDirectory_filePath")
            continue
        if code is None or code not in AFFECTNET_CODES:
            report.bad(path, line, f"expression '{fields[col['expression']].strip()}' is not an integer in 0..10",
                       item=rel)
            continue
        if lut[code] < 0:
            report.exclude(f"expression {code} ({AFFECTNET_CODES[code]})")
            continue
        va = [parse_float(fields[col[k]]) for k in ("valence", "arousal")]
        if any(v is None or not -1.0 <= v <= 1.0 for v in va):
            report.bad(path, line, f"valence/arousal ({fields[col['valence']].strip()}, "
                       f"{fields[col['arousal']].strip()}) must be numbers in [-1, 1]", item=rel)
            continue
        box = None
        if crop:
            x, y, w, h = (parse_float(fields[col[k]]) for k in ("face_x", "face_y", "face_width", "face_height"))
            if None in (x, y, w, h) or w <= 0 or h <= 0:
                report.bad(path, line, "face box (face_x, face_y, face_width, face_height) must be numbers with "
                           "positive width and height; set data.crop=false for pre-cropped images", item=rel)
                continue
            box = (x, y, x + w, y + h)
        rows.append((split, f"{image_dir}/{rel}", int(lut[code]), line, box, va, path))


@register_dataset("affectnet", options=AffectnetOptions)
def affectnet(*, config: DataConfig, options: AffectnetOptions) -> ReadSplits:
    """AffectNet manually annotated (training.csv / validation.csv + images): face crops with valence/arousal."""
    root = dataset_root(config.root, "affectnet", "AffectNet (the folder holding training.csv and the images)")
    files = {split: find_file(root, [d + name for d in LIST_DIRS], what=f"AffectNet {name}")
             for split, name in (("train", options.train_file), ("test", options.test_file))}
    image_dir = next((d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if image_dir is None:
        raise DataError(f"no image folder: expected one of {', '.join(IMAGE_DIRS)}", path=root)
    lut = code_lookup(AFFECTNET_CODES, options.class_order)
    report = ReadReport("affectnet", config.on_bad)
    rows: list = []
    for split, path in files.items():
        _read_csv(path, split, image_dir, lut, crop=options.crop, report=report, rows=rows)
    keep = drop_duplicates([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                           path=[r[6] for r in rows], report=report)
    manifest = Manifest()
    for i in keep:
        split, rel, label, line, box, (valence, arousal), path = rows[i]
        manifest.add(split, rel, label, path, line, box=box, valence=valence, arousal=arousal)
    spec = ReadSpec(
        reader="affectnet", root=root, class_names=options.class_order,
        image_size=image_size_of(config, DEFAULT_SIZE), splits=("train", "test"),
        settings={"reader_version": READER_VERSION, "crop": options.crop, "image_dir": image_dir,
                  "files": {k: str(v.relative_to(root)) for k, v in files.items()}},
        label_files=list(files.values()), workers=options.workers, split_sources=dict(files),
        info={"source": "AffectNet manually annotated", "images": image_dir, "crop": options.crop,
              "label_mapping": describe_mapping(AFFECTNET_CODES, options.class_order)},
    )
    return read_image_files(spec, manifest, report, config)
