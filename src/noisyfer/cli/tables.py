"""Plain-text tables for the terminal (and Markdown, since the format is the same)."""

from __future__ import annotations

from typing import Sequence


def format_cell(value) -> str:
    """A table cell: ``n/a`` for None, 4 decimals for floats, a literal ``|`` escaped as ``\\|``."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[format_cell(v) for v in row] for row in rows]
    heads = [format_cell(str(h)) for h in header]
    widths = [max([len(h), *(len(r[i]) for r in cells if i < len(r))]) for i, h in enumerate(heads)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    out = [line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def summary_table(summary: dict) -> str:
    """The headline numbers of a run, each labelled with the convention it follows (the report's labels)."""
    from ..engine.summary import metric_label

    keys = ["accuracy_best", "accuracy_last", "accuracy_last5", "balanced_accuracy_last", "best_epoch"]
    keys += [k for k in ("train_acc_given_last", "train_acc_true_last", "noisy_memorized_last",
                         "noisy_corrected_last") if k in summary]
    return markdown_table(("metric", "value"), [(metric_label(k, summary), summary.get(k)) for k in keys])


def per_class_table(class_names: Sequence[str], accuracies: Sequence) -> str:
    return markdown_table(("class", "accuracy"), list(zip(class_names, accuracies)))
