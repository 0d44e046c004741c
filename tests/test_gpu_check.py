"""``benchmarks/gpu_check.sh`` runs end to end on the CPU (``--device cpu --quick``), as it will on a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_every_stage_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "NOISYFER_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    out = tmp_path / "report"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--quick",
                           "--methods", "ce,elr", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    methods = (out / "methods.txt").read_text()
    rows = [line for line in methods.splitlines() if line.startswith("| ce |") or line.startswith("| elr |")]
    assert len(rows) == 2 and all("True / True" in row and "none" in row for row in rows)
    assert "identical metrics" in methods and "all checks passed" in methods
    throughput = (out / "throughput.txt").read_text()
    assert "| 48 | 16 | plain |" in throughput and "| 48 | 16 | channels_last |" in throughput
    overhead = (out / "overhead.txt").read_text()
    for name in ("ce", "elr"):
        assert f"| {name} |" in overhead
    assert "== done" in done.stdout


def test_gpu_check_refuses_an_unknown_argument(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--fast"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown argument '--fast'" in done.stderr
