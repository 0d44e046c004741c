"""The run directory: everything a run writes, and what resuming reads back.

::

    RUN_DIR/
      config.yaml            resolved configuration (re-running it reproduces the run)
      train_labels.csv/.json training labels used (after noise) and how they were made
      metrics.jsonl          one JSON line per epoch
      summary.json           best / last / mean-of-last-5 metrics, rewritten every epoch
      tb/                    TensorBoard events
      checkpoints/epoch_NNN.pt   full training state at the end of each epoch (newest K kept)
      best_model.pt          weights of the epoch with the best test accuracy
      samples/epoch_NNN.npz  per-sample records of the method (e.g. current labels), if any
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError

_CKPT = re.compile(r"epoch_(\d+)\.pt$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    return value


def dumps(value: Any, **kwargs) -> str:
    return json.dumps(_json_safe(value), **kwargs)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunDirectory:
    """Paths and writers of one run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.samples = self.path / "samples"
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.summary = self.path / "summary.json"
        self.best_model = self.path / "best_model.pt"
        self.tensorboard = self.path / "tb"

    @classmethod
    def create(cls, out: str, name: str) -> "RunDirectory":
        root = Path(out)
        path = root / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = root / f"{name}-{suffix}"
        path.mkdir(parents=True)
        run = cls(path)
        run.checkpoints.mkdir()
        return run

    @classmethod
    def existing(cls, path: str | os.PathLike) -> "RunDirectory":
        run = cls(path)
        if not run.config.is_file():
            raise UserError(f"not a run directory (no config.yaml): {path}")
        return run

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics.is_file():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, last_epoch: int) -> list[dict]:
        """Drop records after ``last_epoch`` (an epoch lost in a crash) and return the rest."""
        kept = [r for r in self.read_metrics() if r["epoch"] <= last_epoch]
        atomic_write_bytes(self.metrics, "".join(dumps(r) + "\n" for r in kept).encode())
        return kept

    def write_summary(self, summary: dict) -> None:
        atomic_write_bytes(self.summary, (dumps(summary, indent=2) + "\n").encode())

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_path(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:03d}.pt"

    def checkpoint_epochs(self) -> list[int]:
        if not self.checkpoints.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.checkpoints.iterdir() if (m := _CKPT.search(p.name)))

    def save_checkpoint(self, epoch: int, state: dict, *, keep: int) -> Path:
        path = self.checkpoint_path(epoch)
        atomic_torch_save(state, path)
        epochs = self.checkpoint_epochs()
        if keep > 0:
            for old in epochs[:-keep]:
                self.checkpoint_path(old).unlink(missing_ok=True)
        return path

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        epochs = self.checkpoint_epochs()
        return (epochs[-1], self.checkpoint_path(epochs[-1])) if epochs else None

    def resolve_checkpoint(self, checkpoint: str, *, best_falls_back: bool = False) -> Path:
        """Path of ``best`` (``best_model.pt``), ``last`` (newest epoch checkpoint) or a checkpoint file.

        With ``best_falls_back``, a run that has no ``best_model.pt`` yet uses its newest checkpoint.
        """
        if checkpoint == "best":
            path = self.best_model
            if best_falls_back and not path.is_file():
                latest = self.latest_checkpoint()
                if latest is None:
                    raise UserError(f"{self.path}: no best_model.pt and no checkpoint (has the run trained an epoch?)")
                path = latest[1]
        elif checkpoint == "last":
            latest = self.latest_checkpoint()
            if latest is None:
                raise UserError(f"{self.path}: the run has no checkpoint yet")
            path = latest[1]
        else:
            path = Path(checkpoint)
        if not path.is_file():
            raise UserError(f"checkpoint not found: {path}")
        return path

    def save_samples(self, epoch: int, arrays: dict[str, torch.Tensor]) -> None:
        if not arrays:
            return
        self.samples.mkdir(exist_ok=True)
        tmp = self.samples / f".epoch_{epoch:03d}.tmp.npz"
        np.savez_compressed(tmp, **{k: v.detach().cpu().numpy() for k, v in arrays.items()})
        os.replace(tmp, self.samples / f"epoch_{epoch:03d}.npz")


def default_run_name(method: str, data: str, noise_kind: str, noise_rate: float, seed: int) -> str:
    noise = {"none": "clean", "file": "noisefile"}.get(noise_kind, f"{noise_kind}{noise_rate:g}")
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{method}_{data}_{noise}_s{seed}"
