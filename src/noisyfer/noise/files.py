"""Noisy-label files: a CSV of labels plus a JSON sidecar saying how they were made.

``noisy.csv``::

    index,label,original_label
    0,3,3
    1,5,2
    ...

one line per training sample (``index`` = position in the training split), and ``noisy.json`` with the
fields of :meth:`NoisyLabels.to_json` (kind, rate, seed, exact, class names, realized rate, transition
matrix, protocol parameters, number of samples, SHA-256 of the original labels). The reader is strict:
every malformed line raises :class:`~noisyfer.errors.DataError` naming the file and line.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import umask_mode, writing
from .result import (
    LABEL_KINDS,
    SIDECAR_FORMAT,
    SIDECAR_VERSION,
    NoisyLabels,
    labels_sha256,
    transition_matrix,
)

HEADER = "index,label,original_label"
_INT = r"[ \t]*(-?[0-9]{1,18})[ \t]*"  # 18 digits always fit in int64
_ROW = re.compile(",".join([_INT] * 3))
_FIELDS = ("index", "label", "original_label")


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of label file ``path`` (same name, ``.json`` suffix)."""
    return Path(path).with_suffix(".json")


def save_noisy_labels(result: NoisyLabels, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path`` (CSV) and its sidecar (JSON), each atomically; returns ``path``."""
    path = Path(path)
    side = sidecar_path(path)
    if side == path:
        raise DataError("a noisy-label file cannot end in .json (that name is its sidecar); use .csv", path=path)
    index = np.arange(len(result))
    table = np.stack([index, result.labels, result.original], axis=1)
    lines = [HEADER, *(f"{i},{y},{o}" for i, y, o in table.tolist())]
    _write_atomic(path, "\n".join(lines) + "\n")
    _write_atomic(side, json.dumps(result.to_json(), indent=2) + "\n")
    return path


def read_label_file(
    path: str | os.PathLike, *, num_samples: int | None = None, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a noisy-label CSV into ``(labels, original)`` int64 arrays ordered by ``index``.

    Parameters
    ----------
    path
        The CSV file (header ``index,label,original_label``; CRLF line ends and a UTF-8 BOM accepted).
    num_samples
        Expected number of samples (the training split's size); default: the number of lines.
    num_classes
        When given, labels must lie in ``0..num_classes-1``.

    Raises
    ------
    DataError
        Naming the file and line: wrong header, a line without three integers, an index out of range
        or repeated, a label out of range, a missing index or the wrong number of lines.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError("noisy-label file not found", path=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError(f"empty file, expected the header '{HEADER}'", path=path, line=1)
    if lines[0].strip() != HEADER:
        raise DataError(f"header is '{lines[0]}', expected '{HEADER}'", path=path, line=1)

    rows = np.empty((len(lines) - 1, 3), dtype=np.int64)
    for i, line in enumerate(lines[1:]):
        match = _ROW.fullmatch(line)
        if match is None:
            raise DataError(_describe_bad_row(line), path=path, line=i + 2)
        rows[i] = [int(v) for v in match.groups()]
    count = rows.shape[0]
    expected = count if num_samples is None else int(num_samples)
    _check_range(rows[:, 0], 0, expected, "index", path)
    upper = num_classes if num_classes is not None else np.iinfo(np.int64).max
    _check_range(rows[:, 1], 0, upper, "label", path)
    _check_range(rows[:, 2], 0, upper, "original_label", path)

    first_line = np.full(expected, -1, dtype=np.int64)
    order = np.argsort(rows[:, 0], kind="stable")
    sorted_index = rows[order, 0]
    repeated = np.flatnonzero(sorted_index[1:] == sorted_index[:-1])
    if repeated.size:
        earlier, later = order[repeated[0]], order[repeated[0] + 1]
        raise DataError(
            f"index {int(rows[later, 0])} repeats the index of line {earlier + 2}", path=path, line=later + 2
        )
    first_line[rows[:, 0]] = np.arange(count) + 2
    if count != expected:
        missing = np.flatnonzero(first_line < 0)
        raise DataError(
            f"{count} samples, expected {expected} (index {int(missing[0])} missing)",
            path=path, line=len(lines),
        )
    return rows[order, 1].copy(), rows[order, 2].copy()


def load_noisy_labels(
    path: str | os.PathLike, *, num_samples: int | None = None, num_classes: int | None = None
) -> NoisyLabels:
    """Read a label file and its JSON sidecar back into :class:`NoisyLabels`.

    The realized rate and transition matrix are recomputed from the CSV and must agree with the
    sidecar, as must the number of samples, the class count and the SHA-256 of the original labels,
    so a hand-edited or mismatched pair of files is reported instead of trusted.

    Raises
    ------
    DataError
        A malformed CSV (see :func:`read_label_file`), a missing or malformed sidecar, or a
        disagreement between the two files or with ``num_samples`` / ``num_classes``.
    """
    path = Path(path)
    side = sidecar_path(path)
    meta = _read_sidecar(side)
    class_names = tuple(meta["class_names"])
    if num_classes is not None and num_classes != len(class_names):
        raise DataError(f"{len(class_names)} classes {list(class_names)}, expected {num_classes}", path=side)
    if num_samples is not None and num_samples != meta["num_samples"]:
        raise DataError(f"num_samples is {meta['num_samples']}, expected {num_samples}", path=side)
    labels, original = read_label_file(path, num_samples=meta["num_samples"], num_classes=len(class_names))
    if labels_sha256(original) != meta["original_sha256"]:
        raise DataError(f"original_label column does not match original_sha256 of {side}", path=path)
    transition = transition_matrix(original, labels, len(class_names))
    realized = float((labels != original).mean()) if labels.size else 0.0
    if not np.allclose(transition, np.asarray(meta["transition"], dtype=np.float64), atol=1e-9) or \
            abs(realized - meta["realized_rate"]) > 1e-9:
        raise DataError(f"labels disagree with the realized rate / transition matrix in {side}", path=path)
    return NoisyLabels(
        labels=labels,
        original=original,
        kind=meta["kind"],
        rate=meta["rate"],
        seed=meta["seed"],
        exact=meta["exact"],
        class_names=class_names,
        realized_rate=realized,
        expected_rate=meta["expected_rate"],
        transition=transition,
        params=meta["params"],
    )


_SIDECAR_TYPES = {
    "kind": str, "rate": (int, float), "seed": int, "exact": bool, "class_names": list,
    "num_samples": int, "realized_rate": (int, float), "expected_rate": (int, float),
    "transition": list, "params": dict, "original_sha256": str,
}


def _read_sidecar(side: Path) -> dict:
    if not side.is_file():
        raise DataError("JSON sidecar of the noisy-label file is missing", path=side)
    try:
        meta = json.loads(side.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=side) from None
    if not isinstance(meta, dict):
        raise DataError("expected a JSON object", path=side)
    if meta.get("format") != SIDECAR_FORMAT or meta.get("version") != SIDECAR_VERSION:
        raise DataError(
            f"expected format '{SIDECAR_FORMAT}' version {SIDECAR_VERSION}, "
            f"got '{meta.get('format')}' version {meta.get('version')}", path=side,
        )
    for key, types in _SIDECAR_TYPES.items():
        value = meta.get(key)
        if value is None or not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
            raise DataError(f"field '{key}' is missing or not of the expected type", path=side)
    if meta["kind"] not in LABEL_KINDS:
        raise DataError(f"kind '{meta['kind']}' is not one of {', '.join(LABEL_KINDS)}", path=side)
    if not all(isinstance(n, str) for n in meta["class_names"]) or len(meta["class_names"]) < 2:
        raise DataError("class_names must be a list of at least two strings", path=side)
    if meta["num_samples"] < 0:
        raise DataError("num_samples must be non-negative", path=side)
    return meta


def _describe_bad_row(line: str) -> str:
    fields = line.split(",")
    if len(fields) != 3:
        return f"expected 3 comma-separated integers ({HEADER}), got {len(fields)} field(s): '{line}'"
    for name, value in zip(_FIELDS, fields):
        if not re.fullmatch(r"[ \t]*-?[0-9]+[ \t]*", value):
            return f"{name} '{value.strip()}' is not an integer"
        if not re.fullmatch(_INT, value):
            return f"{name} '{value.strip()}' is too large"
    return f"cannot parse '{line}'"


def _check_range(values: np.ndarray, low: int, high: int, name: str, path: Path) -> None:
    bad = np.flatnonzero((values < low) | (values >= high))
    if bad.size:
        i = int(bad[0])
        upper = "" if high == np.iinfo(np.int64).max else f"..{high - 1}"
        raise DataError(f"{name} {int(values[i])} is outside {low}{upper}", path=path, line=i + 2)


def _write_atomic(path: Path, text: str) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with writing(path):
            os.fchmod(fd, umask_mode())  # mkstemp creates 0600; a label file is as shareable as any file
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
