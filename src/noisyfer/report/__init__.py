"""Reports: figures (Matplotlib), a self-contained HTML file and a Markdown summary of a run or a sweep,
and the suspect-label export.

>>> from noisyfer.report import write_report, export_suspects     # doctest: +SKIP
>>> write_report(["runs/RUN_NAME"])                                # RUN_NAME/report.html + report.md
>>> export_suspects("runs/RUN_NAME", top=50)                       # RUN_NAME/suspects.csv + .png
"""

from __future__ import annotations

from .build import ReportFiles, write_report
from .document import Document, Figure, Section, Table
from .html import render_html, write_html
from .markdown import render_markdown, write_markdown
from .suspects_export import SuspectsExport, export_suspects

__all__ = [
    "Document", "Figure", "ReportFiles", "Section", "SuspectsExport", "Table", "export_suspects", "render_html",
    "render_markdown", "write_html", "write_markdown", "write_report",
]
