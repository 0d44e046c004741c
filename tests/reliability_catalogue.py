"""The reliability catalogue (issue 13): bad inputs and faults a careful user meets, each with the outcome
noisyfer must give: the exit status, and one line naming the path or key (no traceback, nothing lost,
nothing accepted silently).

Every case runs ``noisyfer.cli.main.main(argv)`` in this process (seconds for all of them) against a
tiny dataset and a tiny trained run built once. Each outcome is classified:

``clear``      the expected exit status; an error is exactly one ``noisyfer: ...`` line naming the path or key
``traceback``  an exception escaped, or a traceback was printed
``silent``     exit status 0 where an error was due, or the result is wrong (the case's check)
``loss``       a file the case protects changed or disappeared
``unclear``    another exit status, several error lines, or a line that names neither path nor key

Run ``.venv/bin/python -m tests.reliability_catalogue`` for every case and the counts; the suite runs
each case in ``tests/test_reliability_catalogue.py``. The cases are in ``tests/reliability_cases.py`` and ``tests/reliability_cases_input.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager
from unittest import mock

#: Lines that carry an error: ``noisyfer: error: ...`` or ``noisyfer: TrainingDiverged: ...``.
ERROR_LINE = re.compile(r"^noisyfer: (error|[A-Z][A-Za-z]+):")


@dataclass
class Shared:
    """What every case may read (never write): a tiny dataset, a finished 2-epoch run, a sweep."""

    root: Path
    data: Path
    run: Path
    sweep: Path


class Env:
    """One case's world: a fresh folder (the working directory) and copies of the shared run on demand."""

    def __init__(self, tmp: Path, shared: Shared):
        self.tmp = tmp
        self.shared = shared
        self._copies: dict[str, Path] = {}

    @property
    def data(self) -> Path:
        return self.shared.data

    def copy(self, what: str) -> Path:
        """A private copy of the shared ``data``, ``run`` or ``sweep`` (made once per case)."""
        if what not in self._copies:
            target = self.tmp / what
            shutil.copytree(getattr(self.shared, what), target, ignore=shutil.ignore_patterns(".lock"))
            self._copies[what] = target
        return self._copies[what]

    @property
    def run(self) -> Path:
        return self.copy("run")

    @property
    def sweep(self) -> Path:
        return self.copy("sweep")


@dataclass
class Case:
    """One bad input or fault and what noisyfer must answer.

    ``argv`` builds the command line; ``names`` the text the error line (or, for exit status 0, the
    output) must contain; ``setup`` prepares files; ``context`` wraps the command (a held lock, a
    patched function); ``protect`` lists files that must come out unchanged; ``check`` returns a
    problem with the result, if any; ``fsize`` is a file-size limit in bytes during the command.
    """

    id: str
    issue: str
    argv: Callable[[Env], list[str]]
    status: int
    names: Callable[[Env], str] | str
    setup: Callable[[Env], None] | None = None
    context: Callable[[Env], ContextManager] | None = None
    protect: Callable[[Env], list[Path]] | None = None
    check: Callable[[Env, str, str], str | None] | None = None
    fsize: int | None = None


@dataclass
class Outcome:
    case: Case
    verdict: str
    status: int | None
    line: str
    detail: str = ""
    stderr: str = field(default="", repr=False)


def _digest(path: Path) -> str | None:
    if path.is_dir():
        return "dir:" + ",".join(sorted(p.name for p in path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def file_size_limit(limit: int | None):
    """``RLIMIT_FSIZE`` of this process, with ``SIGXFSZ`` ignored so that writes fail with EFBIG."""
    if limit is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def run_case(case: Case, shared: Shared, tmp: Path) -> Outcome:
    """Run ``case`` in the empty folder ``tmp`` and classify its outcome."""
    from noisyfer.cli.main import main

    env = Env(tmp, shared)
    if case.setup is not None:
        case.setup(env)
    argv = [str(a) for a in case.argv(env)]
    protected = {p: _digest(p) for p in (case.protect(env) if case.protect else [])}
    out, err = io.StringIO(), io.StringIO()
    crash = ""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_working_directory(tmp))
        stack.enter_context(mock.patch.dict(os.environ, {"NOISYFER_CACHE": str(tmp / "cache")}))  # nothing outside tmp
        if case.context is not None:
            stack.enter_context(case.context(env))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(file_size_limit(case.fsize))
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - what the catalogue looks for
            status, crash = None, traceback.format_exc()
    stdout, stderr = out.getvalue(), err.getvalue()
    names = case.names(env) if callable(case.names) else case.names
    errors = [line for line in stderr.splitlines() if ERROR_LINE.match(line)]
    line = errors[-1] if errors else (stderr.strip().splitlines() or [""])[-1]

    def outcome(verdict: str, detail: str = "") -> Outcome:
        return Outcome(case, verdict, status, line, detail, stderr + crash)

    if crash or "Traceback (most recent call last)" in stderr:
        return outcome("traceback", (crash or stderr).strip().splitlines()[-1])
    lost = [str(p) for p, digest in protected.items() if _digest(p) != digest]
    if lost:
        return outcome("loss", f"changed or gone: {', '.join(lost)}")
    if case.status != 0 and status == 0:
        return outcome("silent", "exit status 0")
    problem = case.check(env, stdout, stderr) if case.check is not None and status == case.status else None
    if problem:
        return outcome("silent", problem)
    if status != case.status:
        return outcome("unclear", f"exit status {status}, expected {case.status}")
    if case.status != 0:
        if len(errors) != 1:
            return outcome("unclear", f"{len(errors)} error lines")
        if names not in errors[0]:
            return outcome("unclear", f"the line does not name {names!r}")
    elif names and names not in stdout + stderr:
        return outcome("unclear", f"the output does not mention {names!r}")
    return outcome("clear")


def build_shared(root: Path) -> Shared:
    """The tiny dataset (70 train, 21 test, 32 px), a 2-epoch run on it and a sweep of two runs."""
    import json

    import noisyfer
    from noisyfer.config import config_from_args
    from noisyfer.data.format import save_dataset
    from noisyfer.sweep import SweepSpec
    from tests.conftest import make_tiny_split

    data = root / "data"
    save_dataset({"train": make_tiny_split(70, seed=1), "test": make_tiny_split(21, seed=2)}, data)
    overrides = base_overrides(data) + ["noise.kind=symmetric", "noise.rate=0.2", f"out={root / 'runs'}",
                                        "name=run", "train.epochs=2"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run = noisyfer.train(config_from_args(None, overrides)).run_dir
    sweep = root / "sweep"
    spec = SweepSpec.from_args(base_overrides(data) + ["seed=0,1"])
    (sweep / "runs").mkdir(parents=True)
    (sweep / "sweep.yaml").write_text(spec.to_yaml())
    shutil.copytree(run, sweep / "runs" / "seed-0", ignore=shutil.ignore_patterns(".lock"))
    unfinished = sweep / "runs" / "seed-1"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns(".lock"))
    summary = json.loads((unfinished / "summary.json").read_text())
    (unfinished / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    config = (unfinished / "config.yaml").read_text().replace("rate: 0.2", "rate: 0.4")
    (unfinished / "config.yaml").write_text(config)  # alone in its column of the tables: no finished run
    return Shared(root=root, data=data, run=run, sweep=sweep)


def base_overrides(data: Path) -> list[str]:
    """A fast run on the tiny dataset (a fraction of a second per epoch on a CPU)."""
    return ["data=noisyfer", f"data.root={data}", "model.backbone=resnet_tiny", "train.batch_size=16",
            "train.epochs=1", "train.lr=0.003", "seed=0", "train.keep_checkpoints=2"]


def run_all() -> list[Outcome]:
    from tests.reliability_cases_input import CASES

    outcomes = []
    with tempfile.TemporaryDirectory(prefix="noisyfer-catalogue-") as tmp:
        shared = build_shared(Path(tmp) / "shared")
        for i, case in enumerate(CASES):
            folder = Path(tmp) / f"case{i:03d}"
            folder.mkdir()
            outcomes.append(run_case(case, shared, folder))
    return outcomes


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    result = {"cases": len(outcomes)}
    for verdict in ("clear", "traceback", "silent", "loss", "unclear"):
        result[verdict] = sum(o.verdict == verdict for o in outcomes)
    return result


if __name__ == "__main__":
    found = run_all()
    for o in found:
        print(f"{o.verdict:<9} {o.status!s:>4}  [{o.case.issue:>7}] {o.case.id}: {o.line}"
              + (f"  ({o.detail})" if o.detail else ""))
    print(", ".join(f"{k} {v}" for k, v in counts(found).items()))
    sys.exit(0 if all(o.verdict == "clear" for o in found) else 1)
