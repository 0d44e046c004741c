"""Exceptions noisyfer raises on purpose.

Every error a user can cause (a bad config key, a missing file, a malformed label line) is a
:class:`UserError`: the command line prints its message on one line and exits with status 2,
without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class NoisyferError(Exception):
    """Base class of the errors noisyfer raises deliberately."""


class UserError(NoisyferError):
    """Invalid input from the user: configuration, command-line arguments, paths."""


class DataError(UserError):
    """A dataset file is missing or malformed; the message names the file (and line) and what was expected."""

    def __init__(self, message: str, *, path: object = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class StorageError(UserError):
    """Reading or writing a file failed in the file system (no space left, a file-size limit, a read-only
    folder, a path that is not a directory); the message names the file and the reason."""


class RunBusy(UserError):
    """Another process is training the run directory (it holds the run's lock)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a training run; ``run_dir`` is the directory that resumes it."""

    def __init__(self, run_dir: object):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class TrainingDiverged(NoisyferError):
    """The loss became NaN or infinite; the message says at which epoch and step."""
