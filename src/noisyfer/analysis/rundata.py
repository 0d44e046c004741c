"""Read what the analyses need from a run directory: summary, epoch records, labels, truth, data.

:class:`RunData` is a thin, lazy loader; every analysis itself works on plain arrays. The dataset is
rebuilt from the run's ``config.yaml`` (from the cache, nothing retrained) only when an analysis
needs images or ground truth.

>>> run = RunData("runs/RUN_NAME")                        # doctest: +SKIP
>>> run.summary["accuracy_last"], run.sample_keys()       # doctest: +SKIP
>>> true, reference = run.truth()                         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import DataConfig, build_options, load_yaml
from ..errors import DataError, UserError

__all__ = ["RunData", "find_runs", "is_run_dir"]

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.npz$")


def is_run_dir(path: str | os.PathLike) -> bool:
    """A directory with a ``config.yaml`` and something a run writes beside it."""
    path = Path(path)
    return (path / "config.yaml").is_file() and ((path / "summary.json").is_file() or (path / "checkpoints").is_dir())


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Run directories at ``root`` or below it (sorted by path); ``root`` itself if it is one."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    return sorted(p.parent for p in root.rglob("config.yaml") if is_run_dir(p.parent))


class RunData:
    """Lazy access to one run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not (self.path / "config.yaml").is_file():
            raise UserError(f"not a run directory (no config.yaml): {self.path}")

    def __repr__(self) -> str:
        return f"RunData({str(self.path)!r})"

    # -- files -----------------------------------------------------------------------------
    @cached_property
    def tree(self) -> dict:
        """The run's configuration as the nested mapping of ``config.yaml``."""
        return load_yaml(self.path / "config.yaml")

    @cached_property
    def summary(self) -> dict:
        path = self.path / "summary.json"
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc})", path=path) from None

    @cached_property
    def metrics(self) -> list[dict]:
        """The epoch records (a partial last line of a killed append left out; epochs checked 1, 2, ...)."""
        from ..engine.rundir import read_metrics_file

        return read_metrics_file(self.path / "metrics.jsonl")

    @property
    def method(self) -> str:
        return str(self.summary.get("method") or (self.tree.get("method") or {}).get("name", "ce"))

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "not started"))

    @property
    def class_names(self) -> tuple[str, ...]:
        if self.summary.get("class_names"):
            return tuple(self.summary["class_names"])
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # -- per-sample records ----------------------------------------------------------------
    def sample_epochs(self) -> list[int]:
        folder = self.path / "samples"
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _EPOCH_FILE.match(p.name)))

    def sample_record(self, epoch: int | None = None) -> dict[str, np.ndarray]:
        """Arrays of ``samples/epoch_NNN.npz`` (the last epoch by default); empty if the method keeps none."""
        epochs = self.sample_epochs()
        if not epochs:
            return {}
        epoch = epochs[-1] if epoch is None else epoch
        path = self.path / "samples" / f"epoch_{epoch:03d}.npz"
        if not path.is_file():
            raise DataError(f"no per-sample record for epoch {epoch} (has {epochs})", path=path.parent)
        with np.load(path) as arrays:
            return {k: arrays[k] for k in arrays.files}

    def sample_keys(self) -> tuple[str, ...]:
        return tuple(self.sample_record()) if self.sample_epochs() else ()

    # -- labels ----------------------------------------------------------------------------
    @cached_property
    def _given(self):
        from ..noise import load_noisy_labels

        path = self.path / "train_labels.csv"
        if not path.is_file():
            return None
        return load_noisy_labels(path)

    @property
    def given_labels(self) -> np.ndarray:
        """The training labels the run was given (after any noise)."""
        if self._given is not None:
            return np.asarray(self._given.labels, dtype=np.int64)
        return self.train.labels

    @property
    def noise_injected(self) -> bool:
        return self._given is not None and self._given.kind != "none"

    def truth(self) -> tuple[np.ndarray | None, str | None]:
        """``(true labels, what they are)``: the dataset's ``true_label`` column (simulator), else the
        pre-noise labels of injected noise, else ``(None, None)``."""
        if "true_label" in self.train.columns:
            return np.asarray(self.train.columns["true_label"], dtype=np.int64), "true_label column of the training set"
        if self.noise_injected:
            return np.asarray(self._given.original, dtype=np.int64), "pre-noise labels of train_labels.csv"
        return None, None

    # -- data ------------------------------------------------------------------------------
    def data_config(self) -> tuple[DataConfig, object]:
        """The run's ``data`` section resolved into :class:`DataConfig` and the dataset's options."""
        from ..registry import DATASETS

        values = dict(self.tree.get("data") or {})
        own_names = {f.name for f in dataclasses.fields(DataConfig)}
        own = build_options(DataConfig, {k: values.pop(k) for k in list(values) if k in own_names}, section="data")
        return own, build_options(DATASETS.get(own.name).options, values, section="data")

    @cached_property
    def splits(self) -> dict:
        from ..data.datasets import create_dataset

        return create_dataset(*self.data_config())

    @property
    def train(self):
        return self.splits["train"]

    @property
    def test(self):
        return self.splits["test"]
