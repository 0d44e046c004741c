"""Relabel inconsistency (paper 000, Fig. 3): how often relabeling methods flip labels back and forth.

Input is a label *history*: an (E, N) array whose row ``e`` holds every training sample's label after
epoch ``e`` (optionally preceded by the labels the run was given). A run directory provides one:
its ``samples/epoch_NNN.npz`` files (``labels`` key, written by ``epoch_record`` of ``scn``,
``scn_c``, ``rul``, ``rul_c``, ...) preceded by the given labels of ``train_labels.csv``.

Counted between consecutive rows (one snapshot per epoch, so a sample relabeled twice within one
epoch counts once):

* a *change* (flip): the label differs from the previous row's;
* a *return*: a change to a label the sample already held in an earlier row (its given label or an
  earlier relabel), e.g. ``a -> b -> a`` has two changes and one return. This is the same definition
  as the per-step counters of :class:`noisyfer.methods.relabeling.RelabelTracker` logged by the methods.

Examples
--------
>>> history = np.array([[0, 1, 2], [0, 2, 2], [0, 1, 2], [0, 2, 1]])
>>> flip_counts(history).tolist(), return_counts(history).tolist()
([0, 3, 1], [0, 2, 0])
>>> report = relabel_report(history, true_labels=np.array([0, 2, 2]))
>>> report.relabeled, report.back_and_forth, report.flip_count_histogram
(2, 1, {0: 1, 1: 1, 3: 1})
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, UserError

__all__ = [
    "RelabelReport", "changes_per_epoch", "dataset_true_labels", "flip_counts", "label_history", "relabel_accuracy", "relabel_report",
    "return_counts", "returns_per_epoch",
]

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.npz$")


def _as_history(history: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    array = np.asarray(history)
    if array.ndim != 2:
        raise UserError(f"label history must be (epochs, samples), got shape {array.shape}")
    if array.shape[0] < 1:
        raise UserError("label history is empty (no epochs)")
    if not np.issubdtype(array.dtype, np.integer):
        raise UserError(f"labels must be integers, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise UserError(f"labels must be >= 0, got {array.min()}")
    return array.astype(np.int64, copy=False)


def _changes_and_returns(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E-1, N) bool arrays: label changed at row e+1, and that change went back to a held label."""
    h = _as_history(history)
    epochs, n = h.shape
    held = np.zeros((n, int(h.max(initial=0)) + 1), dtype=bool)
    rows = np.arange(n)
    held[rows, h[0]] = True
    changes = h[1:] != h[:-1]
    returns = np.zeros_like(changes)
    for e in range(1, epochs):
        returns[e - 1] = changes[e - 1] & held[rows, h[e]]
        held[rows, h[e]] = True
    return changes, returns


def flip_counts(history: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(N,) number of label changes of each sample over the history."""
    return _changes_and_returns(history)[0].sum(0)


def return_counts(history: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(N,) number of changes of each sample back to a label it had held before."""
    return _changes_and_returns(history)[1].sum(0)


def changes_per_epoch(history: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(E-1,) number of samples whose label changed from row e to row e+1."""
    return _changes_and_returns(history)[0].sum(1)


def returns_per_epoch(history: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(E-1,) number of returns (changes back to a held label) from row e to row e+1."""
    return _changes_and_returns(history)[1].sum(1)


def relabel_accuracy(initial: np.ndarray, final: np.ndarray, true_labels: np.ndarray) -> dict[str, float]:
    """How relabeling changed label correctness, against known true labels.

    Returns
    -------
    dict
        ``label_accuracy_initial`` / ``label_accuracy_final`` (fraction of correct labels before and
        after), ``relabeled`` (samples whose final label differs from the initial one),
        ``relabel_precision`` (fraction of those whose final label is the true one; NaN if none),
        ``corrected`` (wrong -> right), ``corrupted`` (right -> wrong), ``wrong_to_wrong``,
        ``noisy_initial`` (initially wrong labels) and ``noisy_recall`` (fraction of them corrected;
        NaN if none).
    """
    initial, final, true = (np.asarray(a, dtype=np.int64) for a in (initial, final, true_labels))
    if not initial.shape == final.shape == true.shape or initial.ndim != 1:
        raise UserError(f"initial, final and true labels must be (N,) arrays of one length, got "
                        f"{initial.shape}, {final.shape}, {true.shape}")
    moved = initial != final
    right_before, right_after = initial == true, final == true
    corrected = int((moved & ~right_before & right_after).sum())
    noisy = int((~right_before).sum())
    relabeled = int(moved.sum())
    return {
        "label_accuracy_initial": float(right_before.mean()) if initial.size else float("nan"),
        "label_accuracy_final": float(right_after.mean()) if initial.size else float("nan"),
        "relabeled": relabeled,
        "relabel_precision": float((moved & right_after).sum() / relabeled) if relabeled else float("nan"),
        "corrected": corrected,
        "corrupted": int((moved & right_before).sum()),
        "wrong_to_wrong": int((moved & ~right_before & ~right_after).sum()),
        "noisy_initial": noisy,
        "noisy_recall": corrected / noisy if noisy else float("nan"),
    }


@dataclass
class RelabelReport:
    """Summary of a label history (see the module docstring for the definitions).

    Attributes
    ----------
    num_samples, num_rows
        N and E (rows of the history, the given labels included when known).
    relabeled
        Samples whose label changed at least once.
    back_and_forth
        Samples that returned at least once to a label they had held before.
    total_changes, total_returns
        All changes / returns.
    flip_count_histogram
        Number of changes -> number of samples with that many (zero included).
    changes_per_epoch, returns_per_epoch
        Per transition between consecutive rows (length E-1).
    epochs
        Epoch number of each row (0 = the given labels), when known.
    accuracy
        :func:`relabel_accuracy` of the first vs last row, when true labels are known.
    reference
        What the true labels were (e.g. "pre-noise labels of train_labels.csv").
    """

    num_samples: int
    num_rows: int
    relabeled: int
    back_and_forth: int
    total_changes: int
    total_returns: int
    flip_count_histogram: dict[int, int]
    changes_per_epoch: list[int]
    returns_per_epoch: list[int]
    epochs: list[int] | None = None
    accuracy: dict[str, float] | None = None
    reference: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """Plain-text summary for the terminal."""
        lines = [
            f"samples {self.num_samples}, label snapshots {self.num_rows}",
            f"relabeled at least once: {self.relabeled}  back-and-forth (returned to an earlier label): "
            f"{self.back_and_forth}",
            f"changes {self.total_changes}, returns {self.total_returns}",
            "flips per sample: " + ", ".join(f"{k}: {v}" for k, v in self.flip_count_histogram.items()),
        ]
        epochs = self.epochs[1:] if self.epochs else list(range(1, self.num_rows))
        lines.append("changes per epoch: " + ", ".join(f"{e}: {c}" for e, c in zip(epochs, self.changes_per_epoch)))
        if self.accuracy is not None:
            a = self.accuracy
            lines.append(f"against {self.reference or 'true labels'}: label accuracy "
                         f"{a['label_accuracy_initial']:.4f} -> {a['label_accuracy_final']:.4f}, relabel precision "
                         f"{a['relabel_precision']:.4f}, corrected {a['corrected']}, corrupted {a['corrupted']}, "
                         f"wrong->wrong {a['wrong_to_wrong']}")
        return "\n".join(lines)


def relabel_report(source: np.ndarray | Sequence[np.ndarray] | str | os.PathLike, *,
                   true_labels: np.ndarray | str | None = None) -> RelabelReport:
    """Relabel-inconsistency summary of a label history or a run directory.

    Parameters
    ----------
    source
        (E, N) history / list of per-epoch (N,) arrays, or a run directory (see :func:`label_history`).
    true_labels
        (N,) true labels for :func:`relabel_accuracy` of the first vs the last row, or, for a run
        directory, ``"dataset"``: the ``true_label`` column of the run's training set (the simulator's
        ground truth; the dataset is rebuilt from the run's ``config.yaml``, from its cache). For a run
        directory whose ``train_labels.csv`` records injected noise, the pre-noise labels are used
        when nothing is given (``reference`` says which).
    """
    epochs = None
    reference = "true labels" if true_labels is not None else None
    if isinstance(source, (str, os.PathLike)):
        history, epochs, original, noisy = _run_history(Path(source))
        if isinstance(true_labels, str):
            if true_labels != "dataset":
                raise UserError(f"true_labels: expected an array or 'dataset', got {true_labels!r}")
            true_labels, reference = dataset_true_labels(source), "true_label column of the training set"
        elif true_labels is None and noisy:
            true_labels, reference = original, "pre-noise labels of train_labels.csv"
    else:
        history = _as_history(source)
    changes, returns = _changes_and_returns(history)
    flips = changes.sum(0)
    values, counts = np.unique(flips, return_counts=True)
    accuracy = None
    if true_labels is not None:
        true_labels = np.asarray(true_labels)
        if true_labels.shape != history.shape[1:]:
            raise UserError(f"true_labels has shape {true_labels.shape}, expected ({history.shape[1]},)")
        accuracy = relabel_accuracy(history[0], history[-1], true_labels)
    return RelabelReport(
        num_samples=int(history.shape[1]), num_rows=int(history.shape[0]), relabeled=int((flips > 0).sum()),
        back_and_forth=int((returns.sum(0) > 0).sum()), total_changes=int(flips.sum()),
        total_returns=int(returns.sum()), flip_count_histogram={int(v): int(c) for v, c in zip(values, counts)},
        changes_per_epoch=changes.sum(1).astype(int).tolist(), returns_per_epoch=returns.sum(1).astype(int).tolist(),
        epochs=epochs, accuracy=accuracy, reference=reference)


def dataset_true_labels(run_dir: str | os.PathLike) -> np.ndarray:
    """The ``true_label`` column of a run's training set (rebuilt from its ``config.yaml``)."""
    from ..config import load_yaml, resolve_config
    from ..data.datasets import create_dataset

    cfg = resolve_config(load_yaml(Path(run_dir) / "config.yaml"))
    train = create_dataset(cfg.data, cfg.data_options)["train"]
    if "true_label" not in train.columns:
        raise DataError(f"dataset '{cfg.data.name}' has no true_label column (only the simulator knows the truth)",
                        path=Path(run_dir) / "config.yaml")
    return np.asarray(train.columns["true_label"], dtype=np.int64)


def label_history(run_dir: str | os.PathLike, *, include_given: bool = True) -> tuple[np.ndarray, list[int]]:
    """(E, N) labels of a run directory and the epoch of each row (0 = given labels).

    Reads ``RUN_DIR/samples/epoch_NNN.npz`` (key ``labels``; epochs must run 1, 2, ... without gaps)
    and, with ``include_given``, puts the run's given training labels (``train_labels.csv``) first.
    """
    history, epochs, _, _ = _run_history(Path(run_dir), include_given=include_given)
    return history, epochs


def _run_history(run: Path, *, include_given: bool = True) -> tuple[np.ndarray, list[int], np.ndarray | None, bool]:
    samples = run / "samples"
    if not samples.is_dir():
        raise DataError("no samples/ folder: the run's method records no per-sample arrays", path=run)
    found = sorted((int(m.group(1)), p) for p in samples.iterdir() if (m := _EPOCH_FILE.match(p.name)))
    if not found:
        raise DataError("no epoch_NNN.npz files", path=samples)
    numbers = [e for e, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        missing = sorted(set(range(1, numbers[-1] + 1)) - set(numbers))
        raise DataError(f"epochs must run 1..{numbers[-1]} without gaps; missing {missing}", path=samples)
    rows = []
    for epoch, path in found:
        with np.load(path) as arrays:
            if "labels" not in arrays:
                raise DataError(f"no 'labels' array (has: {', '.join(arrays.files)}); the method does not relabel",
                                path=path)
            labels = arrays["labels"]
        if rows and labels.shape != rows[0].shape:
            raise DataError(f"labels have shape {labels.shape}, epoch 1 has {rows[0].shape}", path=path)
        rows.append(labels)
    original, noisy = None, False
    given_file = run / "train_labels.csv"
    if given_file.is_file():
        given, original, noisy = _given_labels(given_file, len(rows[0]))
        if include_given:
            rows.insert(0, given)
            numbers = [0, *numbers]
    return _as_history(np.stack(rows)), numbers, original, noisy


def _given_labels(path: Path, num_samples: int) -> tuple[np.ndarray, np.ndarray, bool]:
    from ..noise import load_noisy_labels

    result = load_noisy_labels(path, num_samples=num_samples)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    noisy = sidecar.get("kind", "none") != "none"
    return np.asarray(result.labels, dtype=np.int64), np.asarray(result.original, dtype=np.int64), noisy
