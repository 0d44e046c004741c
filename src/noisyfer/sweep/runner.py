"""Run a sweep's points as separate ``noisyfer train`` processes: parallel, resumable, shardable.

Layout of a sweep directory::

    SWEEP_DIR/sweep.yaml           the sweep (base, set, grid, replicates)
    SWEEP_DIR/points/NAME.yaml     resolved configuration of each point (what its process trains)
    SWEEP_DIR/runs/NAME/           the point's run directory (see noisyfer.engine.rundir)
    SWEEP_DIR/logs/NAME.log        the process's output
    SWEEP_DIR/logs/NAME.failed.json  written when the point's process failed (exit status, last line,
                                   log); removed when the point is started again
    SWEEP_DIR/locks/NAME.lock      held while a process of this machine trains the point

For each point of its shard the runner decides from the run directory: *skip* (``summary.json`` says
finished with all epochs), *resume* (``noisyfer train resume=RUN_DIR``: a killed or extended run;
``train.epochs`` may grow) or *start*. A run directory whose configuration differs from the point's
(beyond ``out``, ``name``, ``device``, ``train.epochs``) is an error naming the keys: the sweep was
edited, give it another directory. Killing the sweep kills its processes; running the same command
again continues where it stopped, each run from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from ..engine.rundir import atomic_write_bytes
from ..errors import UserError
from .planning import Planned, _summary, plan_point, plan_sweep
from .spec import SweepSpec

__all__ = ["Planned", "PointAttempt", "failure_path", "outcome_line", "plan_point", "plan_sweep", "run_sweep"]


def failure_path(sweep_dir: Path, name: str) -> Path:
    """``SWEEP_DIR/logs/NAME.failed.json``: the record of a point whose process failed."""
    return Path(sweep_dir) / "logs" / f"{name}.failed.json"


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("noisyfer:")]
    return (errors or lines or [""])[-1][:300]


def _record_failure(sweep_dir: Path, item: "Planned", code: int, log: Path) -> None:
    record = {"status": "failed", "exit_status": code, "log": str(log.resolve()), "message": _last_line(log),
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_bytes(failure_path(sweep_dir, item.point.name), (json.dumps(record, indent=2) + "\n").encode())


class _PointLock:
    """Exclusive, non-blocking file lock of one point (released when its process ends)."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._fh = fh
        return True

    def fileno(self) -> int:
        return self._fh.fileno()

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file releases the lock
            self._fh = None


def _command(item: Planned, sweep_dir: Path, device: str | None) -> list[str]:
    base = [sys.executable, "-m", "noisyfer.cli.main", "train"]
    if item.action == "resume":
        cmd = base + [f"resume={item.run_dir}", f"train.epochs={item.epochs}"]
    else:
        config_file = sweep_dir / "points" / f"{item.point.name}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(yaml.safe_dump(item.config, sort_keys=False))
        cmd = base + [str(config_file)]
    if device:
        cmd.append(f"device={device}")
    return cmd


def _child_env(jobs: int) -> dict:
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        # processes sharing the CPU: one thread pool each instead of every core per process
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _ended(proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.time() + timeout_s
    while proc.poll() is None:
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


class PointAttempt:
    """One attempt at one point, whatever runs it (this process's pool, a submitit job on this machine or on
    a Slurm node): take the point's lock, plan it again from its run directory, and train it (start or
    resume) as a ``noisyfer train`` process writing ``logs/NAME.log``; on its end, record a failure.

    ``preexec``: called in the training process before it starts (a scheduler's job uses it so that the
    process ignores the scheduler's warning signal and ends with the job).
    """

    def __init__(self, sweep_dir: Path, item: Planned, *, device: str | None = None, env: dict | None = None,
                 preexec: Callable[[], None] | None = None):
        self.sweep_dir, self.item, self.device = Path(sweep_dir), item, device
        self.env, self.preexec = env, preexec
        self.process: subprocess.Popen | None = None
        self._lock: _PointLock | None = None
        self._log = None

    @property
    def name(self) -> str:
        return self.item.point.name

    @property
    def log_path(self) -> Path:
        return self.sweep_dir / "logs" / f"{self.name}.log"

    def begin(self) -> str:
        """``"busy"`` (another process trains the point), ``"skip"`` (finished meanwhile) or ``"started"``."""
        lock = _PointLock(self.sweep_dir / "locks" / f"{self.name}.lock")
        if not lock.acquire():
            return "busy"
        try:
            self.item = plan_point(self.item.point, self.item.config, self.item.run_dir)  # the state may have changed
        except BaseException:
            lock.release()
            raise
        if self.item.action == "skip":
            lock.release()
            return "skip"
        self._lock = lock
        failure_path(self.sweep_dir, self.name).unlink(missing_ok=True)  # a new attempt
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a")
        self._log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.item.action} ({self.item.reason})\n")
        self._log.flush()
        self.process = subprocess.Popen(_command(self.item, self.sweep_dir, self.device), stdout=self._log,
                                        stderr=subprocess.STDOUT, env=self.env, stdin=subprocess.DEVNULL,
                                        # the child holds the lock too: a killed sweep's orphan still counts
                                        pass_fds=(lock.fileno(),), preexec_fn=self.preexec)
        return "started"

    def note(self, text: str) -> None:
        """Append a line to the point's log (while the attempt runs)."""
        if self._log is not None and not self._log.closed:
            self._log.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
            self._log.flush()

    def finish(self, code: int) -> str:
        """``"finished"`` or ``"failed"`` (recorded in ``logs/NAME.failed.json``) after the process ended with ``code``."""
        self._release()
        if code == 0 and _summary(self.item.run_dir).get("status") == "finished":
            return "finished"
        _record_failure(self.sweep_dir, self.item, code, self.log_path)
        return "failed"

    def wait(self) -> str:
        """Wait for the training process; see :meth:`finish`."""
        # Polling, not Popen.wait(): a signal handler that stops the attempt (a scheduler's warning) may run
        # while this waits, and Popen.wait() would hold the lock that the handler's own wait needs.
        while (code := self.process.poll()) is None:
            time.sleep(0.2)
        return self.finish(code)

    def stop(self, *, grace_s: float = 30.0) -> None:
        """Terminate the training process (its last epoch's checkpoint stays: the point resumes from it)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            if not _ended(proc, grace_s):
                proc.kill()
                _ended(proc, 10.0)
        self._release()

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._lock is not None:
            self._lock.release()
        self._log = self._lock = None


class _Terminated(Exception):
    pass


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, *, jobs: int = 1, shard: tuple[int, int] = (1, 1),
              devices: tuple[str, ...] = (), dry_run: bool = False, echo: Callable[[str], None] = print) -> dict:
    """Run this shard's points of ``spec`` into ``sweep_dir`` as processes of this one; returns counts per outcome.

    Raises
    ------
    UserError
        A point whose configuration is invalid, or a run directory made with other settings.
    KeyboardInterrupt
        On Ctrl-C or SIGTERM, after stopping the running processes (re-run to continue).
    """
    if jobs < 1:
        raise UserError(f"--jobs: expected at least 1, got {jobs}")
    sweep_dir = Path(sweep_dir)
    plans = plan_sweep(spec, sweep_dir, shard=shard, dry_run=dry_run, echo=echo)
    if dry_run:
        return {"planned": len(plans)}
    counts = {"skipped": 0, "finished": 0, "failed": 0, "busy": 0}
    queue = [p for p in plans if p.action != "skip"]
    counts["skipped"] = len(plans) - len(queue)
    env = _child_env(jobs)
    running: dict[int, PointAttempt] = {}
    free_slots = list(range(jobs))
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, on_term)
    started = 0
    try:
        while queue or running:
            while queue and free_slots:
                item = queue.pop(0)
                device = devices[free_slots[0] % len(devices)] if devices else None
                attempt = PointAttempt(sweep_dir, item, device=device, env=env)
                outcome = attempt.begin()
                if outcome == "busy":
                    counts["busy"] += 1
                    echo(f"  busy   {item.point.name} (another sweep process is training it)")
                    continue
                if outcome == "skip":
                    counts["skipped"] += 1
                    continue
                slot = free_slots.pop(0)
                started += 1
                running[slot] = attempt
                echo(f"[{started}/{len(plans) - counts['skipped']}] {attempt.item.action} {attempt.name}"
                     f"{f' on {device}' if device else ''}  ({attempt.item.reason}; log {attempt.log_path})")
            time.sleep(0.2)
            for slot, attempt in list(running.items()):
                code = attempt.process.poll()
                if code is None:
                    continue
                del running[slot]
                free_slots.append(slot)
                outcome = attempt.finish(code)
                counts[outcome] += 1
                echo(outcome_line(attempt.name, outcome, attempt.item.run_dir, code, attempt.log_path))
    except (KeyboardInterrupt, _Terminated):
        for attempt in running.values():
            if attempt.process.poll() is None:
                attempt.process.terminate()
        for attempt in running.values():
            attempt.stop()
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    return counts


def outcome_line(name: str, outcome: str, run_dir: Path, code: int | None, log: Path) -> str:
    """What the sweep prints when a point's training ended."""
    if outcome == "finished":
        summary = _summary(run_dir)
        return (f"  done   {name}: best {summary.get('accuracy_best', float('nan')):.4f}, "
                f"last {summary.get('accuracy_last', float('nan')):.4f}")
    return f"  FAILED {name} (exit status {code}); see {log}"
