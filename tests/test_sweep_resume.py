"""A sweep killed mid-run continues where it stopped: finished runs are skipped, the killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _sweep_cmd(tiny_overrides, out: Path, *extra: str) -> list[str]:
    overrides = [o for o in tiny_overrides if not o.startswith(("out=", "seed=", "train.epochs="))]
    return [sys.executable, "-m", "noisyfer.cli.main", "sweep", *overrides, "method=ce", "seed=0,1",
            "train.epochs=4", "--out", str(out), *extra]


def _wait_for(condition, proc, timeout=300.0):
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended early (exit status {proc.returncode}): {proc.stdout.read()}")
        if time.time() > deadline:
            pytest.fail("timed out waiting for the sweep")
        time.sleep(0.1)


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "summary.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_sweep_resumes_after_being_killed(tiny_overrides, tmp_path):
    out = tmp_path / "sweep"
    first, second = out / "runs" / "seed-0", out / "runs" / "seed-1"
    proc = subprocess.Popen(_sweep_cmd(tiny_overrides, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: _status(first) == "finished" and (second / "checkpoints" / "epoch_001.pt").is_file(), proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its training process, without warning
        proc.wait()
    assert _status(second) != "finished"
    finished_summary = (first / "summary.json").read_bytes()
    finished_mtime = (first / "summary.json").stat().st_mtime_ns

    again = subprocess.run(_sweep_cmd(tiny_overrides, out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 to resume, 1 to skip" in again.stdout
    assert "resume seed-1" in again.stdout and "start seed-0" not in again.stdout
    # the finished run was left alone; the killed one continued after its last checkpoint
    assert (first / "summary.json").read_bytes() == finished_summary
    assert (first / "summary.json").stat().st_mtime_ns == finished_mtime
    assert "resuming" in (out / "logs" / "seed-1.log").read_text()
    metrics = [json.loads(line) for line in (second / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert _status(second) == "finished"
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",finished," in r for r in rows[1:])

    third = subprocess.run(_sweep_cmd(tiny_overrides, out), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "0 to start, 0 to resume, 2 to skip" in third.stdout


@pytest.mark.slow
def test_terminating_the_sweep_stops_its_training_processes(tiny_overrides, tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.Popen(_sweep_cmd(tiny_overrides, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: (out / "runs" / "seed-0" / "config.yaml").is_file(), proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
        assert "run the same command again to continue" in proc.stdout.read()
        assert _processes_mentioning(str(out)) == []  # no orphaned training process
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
