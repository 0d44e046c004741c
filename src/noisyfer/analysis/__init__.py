"""Analyses of finished (or running) runs, read from their run directories.

:mod:`.relabel`: relabel inconsistency of relabeling methods (paper 000, Fig. 3).
"""

from .relabel import (
    RelabelReport,
    changes_per_epoch,
    dataset_true_labels,
    flip_counts,
    label_history,
    relabel_accuracy,
    relabel_report,
    return_counts,
    returns_per_epoch,
)

__all__ = [
    "RelabelReport", "changes_per_epoch", "dataset_true_labels", "flip_counts", "label_history", "relabel_accuracy", "relabel_report",
    "return_counts", "returns_per_epoch",
]
