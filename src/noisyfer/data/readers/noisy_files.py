"""Noisy-label files in RAF-DB's line format (``train_00001.jpg 5``), as they circulate for RAF-DB.

Such a file lists training images by name with a RAF-DB label code (1..7, see
:data:`~noisyfer.data.readers.rafdb.RAFDB_CODES`). :func:`rafdb_noisy_labels` matches every line to a
training sample by file name (``train_00001.jpg`` matches ``Image/aligned/train_00001_aligned.jpg`` and
``Image/original/train_00001.jpg`` in the split's ``path`` column), maps the codes to the split's
class order, and returns :class:`~noisyfer.noise.NoisyLabels` of kind ``file`` whose original labels
are the split's own. Every training sample must be covered exactly once.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from ...errors import DataError, UserError
from ..format import FERData
from .orders import code_lookup
from .rafdb import RAFDB_CODES, image_key, parse_label_lines
from .report import ReadReport
from .textfiles import drop_duplicates, first_line

NOISYFER_HEADER = "index,label,original_label"
_RAFDB_LINE = re.compile(r"\s*\S+\s+[+-]?[0-9]+\s*")


def label_file_format(path: str | os.PathLike) -> str:
    """``"noisyfer"`` (``index,label,original_label`` CSV) or ``"rafdb"`` (``name code`` lines).

    Raises
    ------
    DataError
        When the file is missing or its first line fits neither format.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("noisy-label file not found", path=path)
    line = first_line(path)
    if line.strip() == NOISYFER_HEADER:
        return "noisyfer"
    if _RAFDB_LINE.fullmatch(line):
        return "rafdb"
    raise DataError(f"unrecognised noisy-label file: first line '{line[:80]}'; expected the header "
                    f"'{NOISYFER_HEADER}' (noisyfer) or lines like 'train_00001.jpg 5' (RAF-DB)", path=path, line=1)


def rafdb_noisy_labels(path: str | os.PathLike, train: FERData, *, on_bad: str = "error"):
    """Training labels from a RAF-DB-format noisy-label file.

    Parameters
    ----------
    path
        The file (UTF-8, BOM and CRLF accepted).
    train
        The training split; it must have a ``path`` column (the RAF-DB reader keeps one).
    on_bad
        ``error``: a malformed, repeated or unknown line raises :class:`DataError` naming it;
        ``skip``: such lines are left out and listed in the result's ``params["skipped_lines"]``.
        A training sample without a line is an error either way.

    Returns
    -------
    NoisyLabels
        kind ``file``; ``rate`` and ``expected_rate`` equal the realized rate against the split's
        labels; ``params`` holds the file, its SHA-256 and the skipped lines.
    """
    from ...noise import NoisyLabels, transition_matrix

    path = Path(path)
    if "path" not in train.columns:
        raise UserError(f"noise.file {path} is in RAF-DB's line format, which is matched to the training images by "
                        f"file name, but this dataset keeps no image paths (use a reader such as data=rafdb)")
    names = [image_key(str(p)) for p in train.columns["path"]]
    index = {}
    for i, name in enumerate(names):
        if index.setdefault(name, i) != i:
            raise UserError(f"noise.file {path}: two training images are named '{name}', so lines cannot be matched "
                            f"by file name")
    try:
        lut = code_lookup(RAFDB_CODES, train.class_names)
    except UserError as exc:
        raise UserError(f"noise.file {path}: RAF-DB labels do not fit the dataset's classes ({exc})") from None
    if (lut[1:] < 0).any():
        missing = [RAFDB_CODES[c] for c in RAFDB_CODES if lut[c] < 0]
        raise UserError(f"noise.file {path}: the dataset has no class {missing} for RAF-DB labels")
    report = ReadReport("noise.file", on_bad)
    rows = parse_label_lines(path, report)
    keys = [image_key(name) for _, name, _ in rows]
    keep = drop_duplicates(keys, [code for *_, code in rows], [line for line, *_ in rows], path=path,
                           report=report, what="training image")
    labels = np.full(len(train), -1, dtype=np.int64)
    for i in keep:
        line, name, code = rows[i]
        sample = index.get(keys[i])
        if sample is None:
            report.bad(path, line, f"'{name}' is not an image of the training split", item=name)
            continue
        labels[sample] = lut[code]
    uncovered = np.flatnonzero(labels < 0)
    if uncovered.size:
        raise DataError(f"{uncovered.size} of {len(train)} training samples have no line (first: "
                        f"'{names[uncovered[0]]}'); a noisy-label file must cover the whole training split",
                        path=path)
    original = np.asarray(train.labels, dtype=np.int64)
    realized = float((labels != original).mean()) if labels.size else 0.0
    return NoisyLabels(
        labels=labels, original=original.copy(), kind="file", rate=realized, seed=0, exact=False,
        class_names=train.class_names, realized_rate=realized, expected_rate=realized,
        transition=transition_matrix(original, labels, len(train.class_names)),
        params={"file": str(path), "format": "rafdb", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "skipped_lines": [b.message() for b in report.skipped]},
    )
