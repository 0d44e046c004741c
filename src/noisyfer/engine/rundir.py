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
      data.json              fingerprint of the data the run was trained on (checked by resume and eval)
      .lock                  held (``fcntl.flock``) while a process trains the run

Every file is replaced atomically (written to ``.NAME.tmp`` beside it, then renamed), so a kill leaves
the previous version; ``metrics.jsonl`` is appended to, and a partial last line (a kill or a full disk
during the append) belongs to the epoch that resuming redoes.
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

from ..errors import DataError, RunBusy, StorageError, UserError
from ..fileio import atomic_torch_save, atomic_write_bytes, describe_os_error, writing

__all__ = ["RunDirectory", "atomic_torch_save", "atomic_write_bytes", "default_run_name", "dumps",
           "load_method_weights", "read_checkpoint", "read_jsonl", "read_metrics_file", "rng_state", "set_rng_state"]

_CKPT = re.compile(r"epoch_(\d+)\.pt")


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


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file, one per line (blank lines skipped).

    A last line without its newline that does not parse is what a kill or a full disk leaves in the
    middle of an append: it is left out. Any other line that does not parse is a :class:`DataError`
    naming the file and line.
    """
    with writing(path, action="read"):
        text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # the file does not end with a newline: an interrupted append
                break
            raise DataError(f"invalid JSON line ({exc})", path=path, line=number) from None
        if not isinstance(record, dict):
            raise DataError("expected a JSON object", path=path, line=number)
        records.append(record)
    return records


def read_metrics_file(path: Path) -> list[dict]:
    """The epoch records of a run's ``metrics.jsonl`` (see :func:`read_jsonl`), checked to be epochs
    1, 2, 3, ... in order: anything else means two processes wrote the run, or an edited file."""
    if not path.is_file():
        return []
    records = read_jsonl(path)
    for position, record in enumerate(records, 1):
        if record.get("epoch") != position:
            raise DataError(f"record {position} is of epoch {record.get('epoch')!r}, expected epoch {position} "
                            "(epochs must follow each other once; was the run trained by two processes at once?)",
                            path=path)
    return records


def read_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict:
    """The mapping saved in a checkpoint file, or a :class:`UserError` saying why it cannot be read."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
        raise StorageError(describe_os_error(exc, path, action="read")) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a truncated or foreign file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable checkpoint (truncated or not a torch file: "
                        f"{type(exc).__name__}: {reason[:160]})") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a noisyfer checkpoint (holds a {type(state).__name__}, not a mapping)")
    return state


def load_method_weights(method: torch.nn.Module, path: Path, *, map_location: str | torch.device = "cpu") -> dict:
    """Load the ``method`` weights of checkpoint ``path`` into ``method``; returns the checkpoint.

    Raises a :class:`UserError` naming the file for an unreadable file, a file without the method's
    weights, or weights of another model (other method, backbone, classes or shapes).
    """
    state = read_checkpoint(path, map_location=map_location)
    weights = state.get("method")
    if not isinstance(weights, dict):
        keys = ", ".join(map(str, list(state)[:5])) or "none"
        raise UserError(f"{path}: not a noisyfer checkpoint (no 'method' weights; keys: {keys})")
    try:
        method.load_state_dict(weights)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = " ".join(lines[1:3] if len(lines) > 1 else lines)[:240]
        raise UserError(f"{path}: the weights do not fit this run's model ({type(method).__name__} with its "
                        f"backbone and classes): {detail}") from None
    return state


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
        self.data_fingerprint = self.path / "data.json"
        self.lock_file = self.path / ".lock"
        self._lock = None

    @classmethod
    def create(cls, out: str, name: str) -> "RunDirectory":
        root = Path(out).expanduser()
        if root.exists() and not root.is_dir():
            raise UserError(f"out: not a directory: {root}")
        with writing(root, action="create a run directory in"):
            created_root = not root.exists()
            root.mkdir(parents=True, exist_ok=True)
            path, suffix = root / name, 1
            while True:
                try:
                    path.mkdir()  # mkdir, not exists(): two runs started at once get two directories
                    break
                except FileExistsError:
                    suffix += 1
                    path = root / f"{name}-{suffix}"
            run = cls(path)
            run.checkpoints.mkdir()
        run._created_root = root if created_root else None
        return run

    #: What a run writes before its first epoch (removed by :meth:`discard`).
    SETUP_FILES = ("config.yaml", "data.json", "train_labels.csv", "train_labels.json", "skipped_items.jsonl", ".lock")

    def discard(self) -> None:
        """Remove a run directory this process created whose set-up failed (bad data, Ctrl-C while
        decoding): only the files of :data:`SETUP_FILES` and empty folders; anything else stays."""
        for name in self.SETUP_FILES:
            (self.path / name).unlink(missing_ok=True)
        for folder in (self.checkpoints, self.path, getattr(self, "_created_root", None)):
            try:
                if folder is not None:
                    folder.rmdir()
            except OSError:  # not empty: something else is there, keep it
                return

    @classmethod
    def existing(cls, path: str | os.PathLike) -> "RunDirectory":
        run = cls(Path(path).expanduser())
        if not run.config.is_file():
            raise UserError(f"not a run directory (no config.yaml): {path}")
        return run

    # -- the lock of a training process --------------------------------------------------------
    def lock(self) -> None:
        """Take the run's lock for this process (released by :meth:`unlock` or when the process ends,
        however it ends); a :class:`RunBusy` naming the holder if another process trains the run."""
        import fcntl

        with writing(self.lock_file, action="lock the run with"):
            fh = open(self.lock_file, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            raise RunBusy(f"{self.path}: another process{f' (pid {holder})' if holder.isdigit() else ''} is "
                          "training this run; wait for it to end (or stop it) before resuming") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock = fh

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the hidden temporaries (``.NAME.tmp``) a killed write left; call it holding the lock."""
        removed = []
        for folder in (self.path, self.checkpoints, self.samples):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.endswith(".tmp.npz")) and p.is_file():
                    with writing(p, action="remove the stale temporary"):
                        p.unlink()
                    removed.append(p)
        return removed

    # -- configuration -------------------------------------------------------------------------
    def write_config(self, text: str) -> None:
        atomic_write_bytes(self.config, text.encode())

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        with writing(self.metrics):
            with self.metrics.open("a") as f:
                f.write(dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        return read_metrics_file(self.metrics)

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
        return sorted(int(m.group(1)) for p in self.checkpoints.iterdir() if (m := _CKPT.fullmatch(p.name)))

    def save_checkpoint(self, epoch: int, state: dict, *, keep: int) -> Path:
        path = self.checkpoint_path(epoch)
        atomic_torch_save(state, path)
        epochs = self.checkpoint_epochs()
        if keep > 0:
            for old in epochs[:-keep]:
                with writing(self.checkpoint_path(old), action="remove"):
                    self.checkpoint_path(old).unlink(missing_ok=True)
        return path

    def save_best(self, state: dict) -> None:
        atomic_torch_save(state, self.best_model)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        epochs = self.checkpoint_epochs()
        return (epochs[-1], self.checkpoint_path(epochs[-1])) if epochs else None

    def latest_intact_checkpoint(self, *, max_epoch: int | None = None) -> tuple[int, dict, list[str]] | None:
        """The newest checkpoint that loads (at most ``max_epoch``): ``(epoch, state, problems)``, where
        ``problems`` says which newer ones were passed over and why; ``None`` if there is none at all.

        Raises
        ------
        UserError
            When checkpoints exist but none of them loads.
        """
        problems: list[str] = []
        for epoch in reversed(self.checkpoint_epochs()):
            path = self.checkpoint_path(epoch)
            if max_epoch is not None and epoch > max_epoch:
                problems.append(f"{path.name} is newer than the last epoch recorded in {self.metrics.name} "
                                f"(epoch {max_epoch})")
                continue
            try:
                state = read_checkpoint(path)
            except StorageError:
                raise
            except UserError as exc:
                problems.append(str(exc))
                continue
            missing = [k for k in ("epoch", "method", "optimizers", "scaler", "rng") if k not in state]
            if missing or state["epoch"] != epoch:
                problems.append(f"{path}: not a training checkpoint of epoch {epoch} (missing {', '.join(missing)})"
                                if missing else f"{path}: holds epoch {state['epoch']}, not {epoch}")
                continue
            return epoch, state, problems
        if problems:
            raise UserError(f"{self.checkpoints}: no intact checkpoint to resume from ({'; '.join(problems)})")
        return None

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
            path = Path(checkpoint).expanduser()
        if path.is_dir():
            raise UserError(f"checkpoint: expected a file, got a directory: {path}")
        if not path.is_file():
            raise UserError(f"checkpoint not found: {path}")
        return path

    def save_samples(self, epoch: int, arrays: dict[str, torch.Tensor]) -> None:
        if not arrays:
            return
        path = self.samples / f"epoch_{epoch:03d}.npz"
        tmp = self.samples / f".epoch_{epoch:03d}.tmp.npz"
        try:
            with writing(path):
                self.samples.mkdir(exist_ok=True)
                np.savez_compressed(tmp, **{k: v.detach().cpu().numpy() for k, v in arrays.items()})
                os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def default_run_name(method: str, data: str, noise_kind: str, noise_rate: float, seed: int) -> str:
    noise = {"none": "clean", "file": "noisefile"}.get(noise_kind, f"{noise_kind}{noise_rate:g}")
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{method}_{data}_{noise}_s{seed}"
