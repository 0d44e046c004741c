"""Writing files so that a kill, a full disk or a wrong path never leaves a half-written file or a traceback.

Every file noisyfer writes goes through :func:`atomic_write_bytes` or :func:`atomic_torch_save`: the data
goes to a hidden temporary beside the target (``.NAME.tmp``), is flushed to disk and renamed over the
target, so a reader sees the old file or the new one, never a truncated one. A failure of the file
system (no space left, a file-size limit, a read-only folder, a path that is not a directory) becomes a
:class:`~noisyfer.errors.StorageError` naming the file and the reason, and the temporary is removed.
New files and folders get the permissions the umask allows, as files written with ``open`` do.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any, Iterator

from .errors import StorageError

__all__ = ["atomic_write_bytes", "atomic_torch_save", "describe_os_error", "writing", "umask_mode", "temporary_of"]


def umask_mode(*, directory: bool = False) -> int:
    """Mode of a new file (``0o666``) or directory (``0o777``) after the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def describe_os_error(exc: OSError, path: str | os.PathLike | None = None, *, action: str = "write") -> str:
    """One line: ``cannot <action> <path>: <reason>`` (the failing path named when it is another one)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno is None and re.search(r"\d+ requested and \d+ written", reason):  # numpy's incomplete write
        reason = f"only part of the data could be written ({reason}): is the disk full or a file-size limit set?"
    target = path if path is not None else exc.filename
    text = f"cannot {action} {target}: {reason}" if target is not None else f"cannot {action}: {reason}"
    culprit = exc.filename2 if exc.filename2 is not None else exc.filename
    if culprit is not None and target is not None and Path(culprit).name != Path(target).name \
            and not Path(culprit).name.startswith(f".{Path(target).name}"):
        text += f" ({culprit})"
    return text


@contextlib.contextmanager
def writing(path: str | os.PathLike, *, action: str = "write") -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a :class:`StorageError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise StorageError(describe_os_error(exc, path, action=action)) from None


def temporary_of(path: Path) -> Path:
    """The hidden temporary a write of ``path`` goes through (``.NAME.tmp`` beside it)."""
    return path.with_name(f".{path.name}.tmp")


class _RecordingWriter(io.RawIOBase):
    """A file wrapper that keeps the ``OSError`` of a failed write: torch reports it only as
    ``RuntimeError: ... unexpected pos``, without the reason."""

    def __init__(self, fh):
        super().__init__()
        self._fh = fh
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._fh.flush()


def _write_via_temporary(path: Path, write) -> None:
    path = Path(path)
    tmp = temporary_of(path)
    try:
        with writing(path):
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    _write_via_temporary(Path(path), lambda fh: fh.write(data))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically, with the file system's reason on failure."""
    import torch

    def write(fh) -> None:
        recorder = _RecordingWriter(fh)
        try:
            torch.save(obj, recorder)
        except RuntimeError:
            if recorder.error is not None:
                raise recorder.error from None
            raise

    _write_via_temporary(Path(path), write)
