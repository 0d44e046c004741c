"""What a reader met on the way: bad items (stop or skip, ``data.on_bad``) and protocol exclusions.

``data.on_bad=error`` (the default) stops at the first bad item with a :class:`DataError` naming the
file and line. ``data.on_bad=skip`` leaves the item out, records it here, logs the count, and the
report travels with the splits (:class:`ReadSplits`) so the run can write every skipped item to its
run directory (:meth:`ReadReport.write`).

Exclusions are different: they are rows a dataset's own protocol leaves out (AffectNet's none /
uncertain / no-face, FERPlus' unknown / not-a-face majority, contempt in a 7-class run). They are
counted per reason, never treated as errors, and recorded in the dataset's info.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError

logger = logging.getLogger("noisyfer.data")

#: File written into the run directory by :meth:`ReadReport.write`.
SKIPPED_FILE = "skipped_items.jsonl"


@dataclass(frozen=True)
class BadItem:
    """One bad input: where it is listed (``file``, ``line``), the item (an image path) and why."""

    file: str
    line: int | None
    reason: str
    item: str | None = None

    def message(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        return f"{where}: {self.reason}"


@dataclass
class ReadReport:
    """Bad items skipped and rows excluded while reading one dataset.

    Parameters
    ----------
    reader
        Registered dataset name.
    on_bad
        ``"error"``: :meth:`bad` raises; ``"skip"``: it records.
    """

    reader: str
    on_bad: str = "error"
    skipped: list[BadItem] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_bad not in ("error", "skip"):
            raise ValueError(f"on_bad must be 'error' or 'skip', got {self.on_bad!r}")

    def bad(self, file: str | os.PathLike, line: int | None, reason: str, *, item: str | None = None) -> None:
        """Report a bad item: raise :class:`DataError` (``on_bad=error``) or record it (``skip``)."""
        if self.on_bad == "error":
            raise DataError(reason + "; set data.on_bad=skip to leave such items out", path=file, line=line)
        self.skipped.append(BadItem(file=str(file), line=line, reason=reason, item=item))

    def exclude(self, reason: str, count: int = 1) -> None:
        """Count ``count`` rows left out by the dataset's protocol for ``reason``."""
        if count:
            self.excluded[reason] = self.excluded.get(reason, 0) + int(count)

    def ignore(self, path: str) -> None:
        """A file found in an image folder that is not an image (listed in the info, not an error)."""
        self.ignored.append(str(path))

    def to_json(self) -> dict[str, Any]:
        return {"reader": self.reader, "on_bad": self.on_bad, "skipped": [asdict(b) for b in self.skipped],
                "excluded": dict(self.excluded), "ignored": list(self.ignored)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReadReport":
        return cls(reader=data["reader"], on_bad=data["on_bad"],
                   skipped=[BadItem(**b) for b in data.get("skipped", [])],
                   excluded=dict(data.get("excluded", {})), ignored=list(data.get("ignored", [])))

    def log(self) -> None:
        """Log the number of skipped items (warning) and of exclusions / ignored files (info)."""
        if self.skipped:
            logger.warning("%s: skipped %d bad item(s) (data.on_bad=skip); first: %s", self.reader,
                           len(self.skipped), self.skipped[0].message())
        for reason, count in self.excluded.items():
            logger.info("%s: excluded %d row(s): %s", self.reader, count, reason)
        if self.ignored:
            logger.info("%s: ignored %d non-image file(s), e.g. %s", self.reader, len(self.ignored), self.ignored[0])

    def write(self, directory: str | os.PathLike) -> Path:
        """Write one JSON line per skipped item to ``directory/skipped_items.jsonl`` (empty: none)."""
        path = Path(directory) / SKIPPED_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(json.dumps(asdict(b)) + "\n" for b in self.skipped), encoding="utf-8")
        os.replace(tmp, path)
        return path


class ReadSplits(dict):
    """The splits a reader returns (``{"train": FERData, ...}``) with the :class:`ReadReport` attached."""

    def __init__(self, splits: dict, report: ReadReport, info: dict | None = None):
        super().__init__(splits)
        self.report = report
        self.info = dict(info or {})
