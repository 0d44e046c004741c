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
    """The headline numbers of a run, each labelled with the convention it follows."""
    rows = [
        ("test accuracy, best epoch (SCN/DMUE/LDLVA convention)", summary.get("accuracy_best")),
        ("test accuracy, last epoch (RUL/EAC convention)", summary.get("accuracy_last")),
        ("test accuracy, mean of last 5 epochs (NCCTFER)", summary.get("accuracy_last5")),
        ("balanced accuracy, last epoch (SMEC)", summary.get("balanced_accuracy_last")),
        ("best epoch", summary.get("best_epoch")),
    ]
    for key, label in (("train_acc_given_last", "train predictions = given (noisy) labels"),
                       ("train_acc_true_last", "train predictions = true labels"),
                       ("noisy_memorized_last", "mislabeled samples memorized"),
                       ("noisy_corrected_last", "mislabeled samples predicted correctly")):
        if key in summary:
            rows.append((label + ", last epoch", summary[key]))
    return markdown_table(("metric", "value"), rows)


def per_class_table(class_names: Sequence[str], accuracies: Sequence) -> str:
    return markdown_table(("class", "accuracy"), list(zip(class_names, accuracies)))
