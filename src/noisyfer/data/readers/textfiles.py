"""Reading the datasets' text files strictly: UTF-8 (a BOM accepted), LF or CRLF, line numbers kept.

Structural problems (a missing file, bytes that are not UTF-8, a wrong CSV header) always raise
:class:`~noisyfer.errors.DataError` naming the file and line; problems of one row are reported through
a :class:`~noisyfer.data.readers.report.ReadReport` so that ``data.on_bad=skip`` can leave the row out.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Iterator, Sequence

from ...errors import DataError, UserError

_INT = re.compile(r"[+-]?[0-9]{1,18}")


def dataset_root(root: str | None, reader: str, what: str) -> Path:
    """``data.root`` as a directory, or a :class:`UserError` saying what the reader expects there."""
    if not root:
        raise UserError(f"data.root: the '{reader}' dataset needs data.root=/path/to/{what}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root: directory not found: {path}")
    return path


def find_file(root: Path, candidates: Sequence[str], *, what: str) -> Path:
    """The first of ``candidates`` (relative to ``root``) that exists, else a :class:`DataError` listing them."""
    for name in candidates:
        path = root / name
        if path.is_file():
            return path
    tried = ", ".join(str(root / c) for c in candidates)
    raise DataError(f"{what} not found (looked for {tried})", path=root)


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, BOM removed, CR of CRLF removed, trailing empty lines dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except IsADirectoryError:
        raise DataError("expected a file, found a directory", path=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _not_utf8(path: Path) -> DataError | None:
    """A :class:`DataError` naming the line and byte of the first invalid UTF-8 sequence of ``path``."""
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:offset].count(b"\n") + 1
        return DataError(f"not UTF-8 text ({exc.reason} at byte {offset})", path=path, line=line)
    return None


def first_line(path: Path) -> str:
    """The first non-empty line of a text file (BOM and CR removed); ``""`` for an empty file."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    text = head.decode("utf-8-sig", errors="replace")
    for line in text.split("\n"):
        if line.strip():
            return line.rstrip("\r")
    return ""


class CsvRows:
    """Rows of a CSV file with their line numbers, after checking the header.

    Parameters
    ----------
    path
        The file (UTF-8, BOM and CRLF accepted; quoted fields as the csv module reads them).
    required
        Column names that must be in the header (spaces around names ignored).
    exact
        When given, the header must be exactly these names in this order.

    Attributes
    ----------
    columns
        Header name -> field index.
    """

    def __init__(self, path: Path, *, required: Sequence[str] = (), exact: Sequence[str] | None = None):
        self.path = path
        if not path.is_file():
            raise DataError("file not found", path=path)
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
        self._fh = open(path, encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._fh)
        header = self._next_row()
        if header is None:
            self._fh.close()
            raise DataError(f"empty file, expected a header with {', '.join(exact or required)}", path=path, line=1)
        names = [h.strip() for h in header]
        expected = list(exact) if exact is not None else None
        if (expected is not None and names != expected) or any(r not in names for r in required):
            self._fh.close()
            want = ",".join(expected) if expected is not None else "columns " + ", ".join(required)
            raise DataError(f"wrong header '{','.join(header)}': expected {want}", path=path, line=1)
        self.columns = {n: i for i, n in enumerate(names)}
        self.width = len(names)

    def _next_row(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError as exc:
            # the decoder reads ahead in blocks, so the reader's line count says nothing: find the byte
            raise _not_utf8(self.path) or DataError(f"not UTF-8 text ({exc.reason})", path=self.path) from None
        except csv.Error as exc:
            raise DataError(f"malformed CSV ({exc})", path=self.path, line=self._reader.line_num) from None

    def close(self) -> None:
        self._fh.close()

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(line number, fields)`` for every non-blank row."""
        try:
            while True:
                row = self._next_row()
                if row is None:
                    return
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                yield self._reader.line_num, row
        finally:
            self._fh.close()


def parse_int(text: str) -> int | None:
    """``int(text)`` for a plain decimal integer (spaces allowed around it), else ``None``."""
    text = text.strip()
    return int(text) if _INT.fullmatch(text) else None


def parse_float(text: str) -> float | None:
    """``float(text)`` when finite, else ``None``."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (absolute when outside ``root``)."""
    try:
        return Path(os.path.relpath(path, root)).as_posix() if path.is_relative_to(root) else path.as_posix()
    except ValueError:
        return path.as_posix()


def drop_duplicates(keys: Sequence[str], labels: Sequence[int], lines: Sequence[int], *,
                    path: Path | Sequence[Path], report, what: str = "image") -> list[int]:
    """Positions to keep after reporting repeated ``keys`` (through ``report``, a ``ReadReport``).

    ``path`` is the label file, or one file per key when the keys come from several files. Every
    repetition is a bad item naming where it was first listed; when the repetitions disagree on the
    label, the first occurrence is bad too (which label is right cannot be known).
    """
    files = [path] * len(keys) if isinstance(path, (str, Path)) else list(path)

    def where(j: int) -> str:
        return f"line {lines[j]}" if files[j] == files[i] else f"{files[j]}:{lines[j]}"

    first: dict[str, int] = {}
    conflicting: set[str] = set()
    bad = set()
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j == i:
            continue
        bad.add(i)
        if labels[i] != labels[j]:
            conflicting.add(key)
            report.bad(files[i], lines[i], f"{what} '{key}' listed again (first on {where(j)}) with another "
                       f"label ({labels[i]} vs {labels[j]})", item=key)
        else:
            report.bad(files[i], lines[i], f"{what} '{key}' listed again (first on {where(j)})", item=key)
    for key in sorted(conflicting, key=lambda k: first[k]):
        j = first[key]
        bad.add(j)
        report.bad(files[j], lines[j], f"{what} '{key}' has conflicting labels on several lines", item=key)
    return [i for i in range(len(keys)) if i not in bad]
