"""Render a :class:`~noisyfer.report.document.Document` to one self-contained HTML file: inline CSS,
figures embedded as base64 PNG, no script and no external resource."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..cli.tables import format_cell
from ..engine.rundir import atomic_write_bytes
from ..papers import name_papers
from .document import Document, Table

__all__ = ["render_html", "write_html"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
       background: #f4f5f7; color: #1d232b; }
header { background: #23395d; color: white; padding: 22px 36px; }
header h1 { margin: 0 0 6px 0; font-size: 24px; }
header p { margin: 0; opacity: 0.85; }
nav { background: white; padding: 10px 36px; border-bottom: 1px solid #dde1e6; font-size: 14px; }
nav a { margin-right: 16px; color: #23395d; text-decoration: none; }
main { padding: 12px 36px 40px 36px; max-width: 1250px; }
section { background: white; border-radius: 6px; padding: 8px 22px 18px 22px; margin: 18px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
h2 { color: #23395d; border-bottom: 2px solid #e3e7ee; padding-bottom: 6px; }
h3 { font-size: 15px; margin: 18px 0 6px 0; }
table { border-collapse: collapse; margin: 6px 0 12px 0; font-size: 13px; }
th, td { border: 1px solid #d5dae1; padding: 4px 9px; text-align: right; }
th { background: #eef1f6; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
td.na { color: #8a94a3; }
figure { margin: 10px 0 18px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ee; }
figcaption { font-size: 12px; color: #4a5566; margin-top: 4px; }
p.note { font-size: 13px; color: #4a5566; }
pre { background: #f6f8fa; padding: 8px 12px; font-size: 12px; overflow-x: auto; }
"""


def _e(text) -> str:
    """Escaped text, the papers named by title (never by the project's file numbers)."""
    return html.escape(name_papers(str(text)))


def _table(table: Table) -> str:
    out = [f"<h3>{_e(table.title)}</h3>", "<table>", "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in table.header]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        cells = []
        for value in row:
            text = format_cell(value)
            bold = text.startswith("**") and text.endswith("**") and len(text) > 4
            text = text[2:-2] if bold else text
            css = ' class="na"' if text == "n/a" else ""
            cells.append(f"<td{css}>{'<b>' if bold else ''}{_e(text)}{'</b>' if bold else ''}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if table.note:
        out.append(f'<p class="note">{_e(table.note)}</p>')
    return "\n".join(out)


def render_html(doc: Document) -> str:
    """The whole page as a string."""
    anchors = [f"s{i}" for i in range(len(doc.sections))]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_e(doc.title)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<header><h1>{_e(doc.title)}</h1><p>{_e(doc.subtitle)}</p></header>", "<nav>"]
    parts += [f'<a href="#{a}">{_e(s.title)}</a>' for a, s in zip(anchors, doc.sections)]
    parts.append("</nav><main>")
    for anchor, section in zip(anchors, doc.sections):
        parts.append(f'<section id="{anchor}"><h2>{_e(section.title)}</h2>')
        parts += [f'<p class="note">{_e(p)}</p>' for p in section.paragraphs]
        parts += [_table(t) for t in section.tables]
        parts += [f"<pre>{_e(b)}</pre>" for b in section.blocks]
        for fig in section.figures:
            data = base64.b64encode(fig.png).decode("ascii")
            caption = f"<figcaption>{_e(fig.caption)}</figcaption>" if fig.caption else ""
            parts.append(f'<figure><h3>{_e(fig.title)}</h3><img alt="{_e(fig.title)}" '
                         f'src="data:image/png;base64,{data}">{caption}</figure>')
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_html(doc: Document, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, render_html(doc).encode("utf-8"))
    return path
