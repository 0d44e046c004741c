"""Render a :class:`~noisyfer.report.document.Document` to a Markdown summary, its figures written as
PNG files in a folder beside it and linked."""

from __future__ import annotations

import os
from pathlib import Path

from ..cli.tables import markdown_table
from ..engine.rundir import atomic_write_bytes
from ..papers import name_papers
from .document import Document

__all__ = ["render_markdown", "write_markdown"]


def render_markdown(doc: Document, *, figure_dir: str | None = None) -> str:
    """Markdown text; figures are linked as ``figure_dir/<name>.png`` (or only named without a folder)."""
    lines = [f"# {doc.title}", ""]
    if doc.subtitle:
        lines += [doc.subtitle, ""]
    for section in doc.sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for table in section.tables:
            lines += [f"**{table.title}**", "", markdown_table(table.header, table.rows), ""]
            if table.note:
                lines += [f"_{table.note}_", ""]
        for block in section.blocks:
            lines += ["```", block, "```", ""]
        for fig in section.figures:
            if figure_dir is None:
                lines += [f"Figure: {fig.title} (in the HTML report)", ""]
            else:
                lines += [f"![{fig.title}]({figure_dir}/{fig.name}.png)", ""]
            if fig.caption:
                lines += [f"_{fig.caption}_", ""]
    return name_papers("\n".join(lines))  # the papers by title, not by the project's file numbers


def write_markdown(doc: Document, path: str | Path, *, with_figures: bool = True) -> Path:
    """Write the summary to ``path`` and, with ``with_figures``, its PNGs to ``<stem>_figures/``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = None
    if with_figures and doc.figures():
        folder_path = path.with_name(f"{path.stem}_figures")
        folder_path.mkdir(exist_ok=True)
        for fig in doc.figures():
            atomic_write_bytes(folder_path / f"{fig.name}.png", fig.png)
        folder = os.path.relpath(folder_path, path.parent)
    atomic_write_bytes(path, render_markdown(doc, figure_dir=folder).encode("utf-8"))
    return path
