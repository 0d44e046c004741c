"""Seeded stratified folds of a training split, for out-of-fold (out-of-sample) predictions.

A run with ``data.folds=K data.fold=F`` trains on the samples of the other ``K - 1`` folds and, after
every epoch, writes the predicted probabilities of the samples of fold ``F`` (which it never drew
into a batch) to ``RUN_DIR/heldout_probs.npz``. ``noisyfer suspects --cv K`` runs the ``K`` folds and
puts the held-out rows together: every training sample gets exactly one probability vector from a
model that did not train on it (what confident learning needs).

The folds are stratified on the *given* training labels (after any injected noise: the labels the
models see), so every fold holds each class's samples in proportion, and depend only on those
labels, ``K`` and ``data.fold_seed``.

Examples
--------
>>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
>>> folds = stratified_folds(labels, k=2, seed=0)
>>> np.bincount(folds[labels == 0]).tolist(), np.bincount(folds[labels == 1]).tolist()
([2, 2], [2, 2])
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ["HELDOUT_FILE", "check_fold_settings", "stratified_folds"]

#: Written into a fold run's directory after every epoch: ``indices``, ``probs``, ``labels``, ``epoch``.
HELDOUT_FILE = "heldout_probs.npz"


def check_fold_settings(folds: int, fold: int | None) -> None:
    """Raise a :class:`UserError` naming the key unless ``(data.folds, data.fold)`` make sense."""
    if folds == 0 and fold is None:
        return
    if folds < 2:
        raise UserError(f"data.folds: expected 0 (no folds) or at least 2, got {folds}")
    if fold is None:
        raise UserError(f"data.fold: data.folds={folds} needs the held-out fold, 0..{folds - 1}")
    if not 0 <= fold < folds:
        raise UserError(f"data.fold: expected 0..{folds - 1} (data.folds={folds}), got {fold}")


def stratified_folds(labels, *, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of every sample, stratified by ``labels``.

    Each class's samples are shuffled with a generator seeded by ``seed``; the classes are then laid
    end to end and dealt to the folds in turn, so fold sizes differ by at most one overall and each
    class's counts differ by at most one between folds.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1:
        raise UserError(f"folds: labels must be (N,), got shape {labels.shape}")
    if k < 2:
        raise UserError(f"folds: expected at least 2 folds, got {k}")
    if labels.size < k:
        raise UserError(f"folds: {k} folds need at least {k} training samples, got {labels.size}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xF01D]))
    order = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)])
    folds = np.empty(labels.size, dtype=np.int64)
    folds[order] = np.arange(labels.size) % k
    return folds
