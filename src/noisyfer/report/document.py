"""The content of a report, independent of its format: sections of text, tables and figures."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

__all__ = ["Document", "Figure", "Section", "Table", "progress"]


@contextlib.contextmanager
def progress(phase: str) -> Iterator[None]:
    """``report: PHASE ...`` on stderr before a phase of a report and ``done in N s`` after it: a report of
    a large run or sweep takes minutes, and says what it is doing meanwhile."""
    print(f"report: {phase} ...", file=sys.stderr, flush=True)
    started = time.time()
    yield
    print(f"report: {phase} done in {time.time() - started:.1f} s", file=sys.stderr, flush=True)


@dataclass
class Table:
    """A table; ``None`` cells are shown as "n/a"."""

    title: str
    header: Sequence[str]
    rows: list[Sequence]
    note: str | None = None


@dataclass
class Figure:
    """A PNG figure and its caption (``name``: file stem when written beside the Markdown summary)."""

    title: str
    png: bytes
    name: str
    caption: str | None = None


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    #: Markdown/preformatted blocks (shown as code in both formats).
    blocks: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.paragraphs.append(text)


@dataclass
class Document:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]
