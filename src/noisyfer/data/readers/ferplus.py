"""FERPlus: the FER2013 faces (``fer2013.csv``) relabelled by ten annotators (``fer2013new.csv``).

``fer2013new.csv`` has one row per row of ``fer2013.csv``, in the same order::

    Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF

Label rule (``data.vote_rule``):

``majority`` (default, the FERPlus authors' majority mode)
    votes cast by a single annotator are dropped as outliers; the label is the class holding more
    than half of the remaining votes. Images without such a class are excluded.
``plurality``
    the most-voted of the ten columns; images whose top count is shared are excluded.

Images whose label is ``unknown`` or ``NF`` (not a face), rows without an image name (removed by
FERPlus), and contempt images when ``data.classes=7`` are excluded too; every exclusion is counted
in the dataset's info. The vote distribution over the run's classes is kept as ``label_dist`` and
the raw counts as ``votes``; ``fer2013_label`` is the image's original FER2013 label in the run's
class order (FER2013's single labels are a natural noisy version of FERPlus').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...config import DataConfig
from ...errors import DataError
from ...registry import register_dataset
from ..format import FERData
from .fer2013 import FER2013_CODES, SIDE, assemble, read_fer2013_csv, split_of_usage
from .options import ReaderOptions, image_size_of
from .orders import FERPLUS_ORDER, code_lookup, describe_mapping
from .pipeline import ReadSpec, cached_read
from .report import ReadReport, ReadSplits
from .textfiles import CsvRows, dataset_root, parse_int, relative_name

#: The vote columns of fer2013new.csv, in file order (also FERPlus' label codes 0..9).
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                "unknown", "NF")
HEADER = ("Usage", "Image name", *VOTE_COLUMNS)
READER_VERSION = 1


@dataclass
class FerplusOptions(ReaderOptions):
    """Options of the ``ferplus`` dataset.

    Attributes
    ----------
    classes
        8 (with contempt, FERPlus' set) or 7 (contempt images excluded).
    vote_rule
        ``majority`` or ``plurality`` (see the module docstring).
    file, labels_file
        The FER2013 CSV and the FERPlus vote CSV, relative to ``data.root``.
    test_usage
        ``PrivateTest`` (default: the ``test`` split, PublicTest is ``val``) or ``PublicTest``.
    """

    classes: int = 8
    vote_rule: str = "majority"
    file: str = "fer2013.csv"
    labels_file: str = "fer2013new.csv"
    test_usage: str = "PrivateTest"

    def native_order(self):
        return FERPLUS_ORDER[:self.classes]

    def __post_init__(self) -> None:
        if self.classes not in (7, 8):
            raise ValueError(f"classes must be 7 or 8, got {self.classes}")
        if self.vote_rule not in ("majority", "plurality"):
            raise ValueError(f"vote_rule must be majority or plurality, got {self.vote_rule!r}")
        if self.test_usage not in ("PrivateTest", "PublicTest"):
            raise ValueError(f"test_usage must be PrivateTest or PublicTest, got {self.test_usage!r}")
        super().__post_init__()


def vote_labels(votes: np.ndarray, rule: str) -> np.ndarray:
    """FERPlus label code (index into :data:`VOTE_COLUMNS`) per row of int (N, 10) ``votes``; -1: none.

    Examples
    --------
    >>> vote_labels(np.array([[6, 1, 0, 3, 0, 0, 0, 0, 0, 0], [4, 0, 0, 4, 2, 0, 0, 0, 0, 0]]), "majority").tolist()
    [0, -1]
    """
    votes = np.asarray(votes, dtype=np.int64)
    if rule == "majority":
        kept = np.where(votes > 1, votes, 0)
        top = kept.argmax(1)
        has_majority = 2 * kept.max(1) > kept.sum(1)
        return np.where(has_majority, top, -1)
    if rule == "plurality":
        top = votes.argmax(1)
        shared = (votes == votes.max(1, keepdims=True)).sum(1) > 1
        return np.where(shared | (votes.max(1) == 0), -1, top)
    raise ValueError(f"unknown vote rule {rule!r}")


def read_votes(path, usages: dict[int, str], report: ReadReport) -> dict[int, tuple[int, str, np.ndarray] | None]:
    """``{data row: (line, image name, votes (10,))}`` of fer2013new.csv; ``None`` for a bad row.

    ``usages`` maps a data row of fer2013.csv to its Usage; a FERPlus row must agree with it. Bad rows
    go to ``report`` (and map to ``None``, so that their face is not reported a second time).
    """
    rows = CsvRows(path, exact=HEADER)
    out: dict = {}
    for index, (line, fields) in enumerate(rows):
        out[index] = None
        if len(fields) != rows.width:
            report.bad(path, line, f"expected {rows.width} fields ({','.join(HEADER)}), got {len(fields)}")
            continue
        usage, name = fields[0].strip(), fields[1].strip()
        counts = [parse_int(v) for v in fields[2:]]
        bad = next((i for i, v in enumerate(counts) if v is None or v < 0), None)
        if bad is not None:
            report.bad(path, line, f"vote count '{fields[2 + bad].strip()}' for {VOTE_COLUMNS[bad]} is not a "
                       f"non-negative integer", item=name or None)
            continue
        if sum(counts) == 0:
            report.bad(path, line, "the row has no votes", item=name or None)
            continue
        if index in usages and usage != usages[index]:
            report.bad(path, line, f"Usage '{usage}' differs from '{usages[index]}' of the same row of fer2013.csv",
                       item=name or None)
            continue
        out[index] = (line, name, np.asarray(counts, dtype=np.int64))
    return out


@register_dataset("ferplus", options=FerplusOptions)
def ferplus(*, config: DataConfig, options: FerplusOptions) -> ReadSplits:
    """FERPlus (fer2013.csv faces + fer2013new.csv votes): majority labels and vote distributions, cached."""
    root = dataset_root(config.root, "ferplus", "FERPlus (the folder holding fer2013.csv and fer2013new.csv)")
    faces_path, votes_path = root / options.file, root / options.labels_file
    for path, what in ((faces_path, "FER2013 file"), (votes_path, "FERPlus label file")):
        if not path.is_file():
            raise DataError(f"{what} {path.name} not found", path=path)
    order = list(options.class_order)
    usage_split = split_of_usage(options.test_usage)
    vote_to_class = code_lookup(dict(enumerate(VOTE_COLUMNS)), order)
    fer_to_class = code_lookup(FER2013_CODES, order)
    columns_of_order = [VOTE_COLUMNS.index(name) for name in order]
    size = image_size_of(config, SIDE)
    spec = ReadSpec(reader="ferplus", root=root, class_names=order, image_size=size, splits=("train", "val", "test"),
                    settings={"reader_version": READER_VERSION, "files": [options.file, options.labels_file],
                              "vote_rule": options.vote_rule, "usage": usage_split},
                    label_files=[votes_path, faces_path], workers=options.workers,
                    info={"source": "FERPlus", "vote_rule": options.vote_rule, "usage_to_split": usage_split,
                          "label_mapping": describe_mapping(dict(enumerate(VOTE_COLUMNS)), order)})

    def build(report: ReadReport) -> dict[str, FERData]:
        faces, num_rows = read_fer2013_csv(faces_path, report, need_emotion=False)
        votes = read_votes(votes_path, {r.index: r.usage for r in faces}, report)
        vote_rows = max(votes) + 1 if votes else 0
        if vote_rows > num_rows:
            raise DataError(f"{vote_rows} data rows but {faces_path.name} has {num_rows}: fer2013new.csv must "
                            f"have one row per row of fer2013.csv, in the same order", path=votes_path)
        kept, labels = [], []
        for face in faces:
            if face.index not in votes:
                report.bad(votes_path, None, f"no FERPlus votes for row {face.index} of {faces_path.name} "
                           f"(line {face.line})")
                continue
            if votes[face.index] is None:  # a bad row of fer2013new.csv, reported already
                continue
            line, name, counts = votes[face.index]
            if not name:
                report.exclude("no image name (removed by FERPlus)")
                continue
            code = int(vote_labels(counts[None], options.vote_rule)[0])
            if code < 0:
                report.exclude(f"no {options.vote_rule} label among the votes")
            elif VOTE_COLUMNS[code] in ("unknown", "NF"):
                report.exclude("voted unknown or not a face (NF)")
            elif vote_to_class[code] < 0:
                report.exclude(f"{VOTE_COLUMNS[code]} (not among data.classes={options.classes})")
            else:
                kept.append(face)
                labels.append(int(vote_to_class[code]))
        class_votes = np.stack([votes[f.index][2][columns_of_order] for f in kept]) if kept else \
            np.zeros((0, len(order)), dtype=np.int64)
        original = np.asarray([-1 if f.code is None else fer_to_class[f.code] for f in kept], dtype=np.int64)
        columns = {"votes": class_votes,
                   "label_dist": (class_votes / np.maximum(class_votes.sum(1, keepdims=True), 1)).astype(np.float32),
                   "fer2013_label": original}
        return assemble(kept, np.asarray(labels, dtype=np.int64), usage_split, order, size, columns)

    report = ReadReport("ferplus", config.on_bad)
    stats = [p.stat() for p in (faces_path, votes_path)]
    sources = ([relative_name(faces_path, root), relative_name(votes_path, root)],
               np.array([s.st_size for s in stats]), np.array([s.st_mtime_ns for s in stats]))
    return cached_read(spec, config, sources, report, build)
