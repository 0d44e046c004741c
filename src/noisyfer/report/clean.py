"""``noisyfer suspects --clean-out DIR``: the training set with the suspects removed or relabelled.

Both modes write ``DIR`` as a dataset in noisyfer's format (``data=noisyfer data.root=DIR`` trains on
it, with ``noise.kind=none``: its labels already are the given ones, cleaned):

``remove``
    the training split without the suspects, its labels the *given* training labels of the run
    (after any injected noise) of the samples kept; the test split as it was.
``relabel``
    every training sample, the suspects' labels replaced by their suggested label. ``DIR`` also gets
    ``relabel.csv``, a noise file for the *original* data (``noise.file=DIR/relabel.csv`` with the run's
    own data settings), checked against the split's labels by checksum like any noise file.

Per-sample columns (``true_label`` of the simulator, ``path`` of a folder or CSV dataset, ...) go
along, so a cleaned simulator set still knows its truth. ``DIR/meta.json``'s ``info.cleaning`` says
what was done (mode, source, score, removed or relabelled indices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.format import FERData, save_dataset
from ..errors import UserError

__all__ = ["CLEAN_MODES", "write_clean_dataset"]

CLEAN_MODES = ("remove", "relabel")


def write_clean_dataset(*, train: FERData, test: FERData, given, suspects, suggested, out, mode: str = "remove",
                        info: dict | None = None) -> Path:
    """Write the cleaned dataset to ``out`` (see the module docstring); returns ``out``.

    Parameters
    ----------
    train, test
        The run's splits as the dataset gives them (``train.labels`` = the labels before any noise).
    given
        (N,) the training labels the run was given.
    suspects
        Indices of the training samples to remove or relabel.
    suggested
        (N,) suggested label of every training sample (used by ``relabel``).
    """
    if mode not in CLEAN_MODES:
        raise UserError(f"--clean: expected one of {', '.join(CLEAN_MODES)}, got {mode!r}")
    given = np.asarray(given, dtype=np.int64)
    suspects = np.unique(np.asarray(suspects, dtype=np.int64))
    if given.shape != (len(train),):
        raise UserError(f"given labels: {given.size} for a training split of {len(train)} samples")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--clean-out: {out} exists and is not empty; give a new directory")
    columns = dict(train.columns)
    labels = given.copy()
    if mode == "relabel":
        labels[suspects] = np.asarray(suggested, dtype=np.int64)[suspects]
        cleaned = FERData(images=train.images, labels=labels, class_names=train.class_names, columns=columns)
    else:
        keep = np.setdiff1d(np.arange(len(train)), suspects)
        cleaned = FERData(images=train.images, labels=labels, class_names=train.class_names,
                          columns=columns).subset(keep)
    meta = {"cleaning": {"mode": mode, "suspects": suspects.tolist(), "num_train_before": len(train),
                         "num_train_after": len(cleaned), **(info or {})}}
    save_dataset({"train": cleaned, "test": test}, out, info=meta)
    if mode == "relabel":
        _write_relabel_file(train, labels, out / "relabel.csv")
    return out


def _write_relabel_file(train: FERData, labels: np.ndarray, path: Path) -> None:
    from ..noise import save_noisy_labels
    from ..noise.result import NoisyLabels, transition_matrix

    original = np.asarray(train.labels, dtype=np.int64)
    changed = float((labels != original).mean())
    noisy = NoisyLabels(labels=labels, original=original, kind="file", rate=0.0, seed=0, exact=False,
                        class_names=train.class_names, realized_rate=changed, expected_rate=changed,
                        transition=transition_matrix(original, labels, len(train.class_names)),
                        params={"made_by": "noisyfer suspects --clean relabel"})
    save_noisy_labels(noisy, path)
