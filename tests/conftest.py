"""Shared fixtures: a tiny learnable dataset in noisyfer's format and config helpers."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from noisyfer.data.classes import BASIC7
from noisyfer.data.format import FERData, save_dataset


ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def benchmark_script(name: str):
    """``benchmarks/NAME.py`` imported as module ``NAME`` (registered while the block runs, so its
    dataclasses and pickling resolve), for the tests of a benchmark's own logic."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def make_tiny_split(n: int, *, size: int = 32, seed: int = 0) -> FERData:
    """Images whose class is a bright square at a class-specific place: a CNN learns it in 1-2 epochs.

    Carries ``true_label``, ``label_dist`` and (pseudo) valence/arousal columns like the simulator.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(BASIC7)
    rng.shuffle(labels)
    images = (rng.random((n, size, size, 3)) * 60).astype(np.uint8)
    cell = size // 4
    for c in range(len(BASIC7)):
        y, x = divmod(c, 4)
        images[labels == c, y * cell:(y + 1) * cell, x * cell:(x + 1) * cell, :] += 150
    dist = np.full((n, len(BASIC7)), 0.02, dtype=np.float32)
    dist[np.arange(n), labels] = 1 - 0.02 * (len(BASIC7) - 1)
    # class centres on the circumplex (neutral, happiness, sadness, surprise, fear, disgust, anger)
    va_centre = np.array([[0.0, 0.0], [0.8, 0.5], [-0.7, -0.4], [0.3, 0.8], [-0.6, 0.7], [-0.7, 0.3], [-0.5, 0.8]])
    va = np.clip(va_centre[labels] + rng.normal(0, 0.1, (n, 2)), -1, 1).astype(np.float32)
    pseudo = np.clip(va + rng.normal(0, 0.15, (n, 2)), -1, 1).astype(np.float32)
    return FERData(images=images, labels=labels, class_names=BASIC7,
                   columns={"true_label": labels.copy(), "label_dist": dist, "valence": va[:, 0],
                            "arousal": va[:, 1], "pseudo_valence": pseudo[:, 0], "pseudo_arousal": pseudo[:, 1]})


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "tiny"
    save_dataset({"train": make_tiny_split(448, seed=1), "test": make_tiny_split(140, seed=2)}, root)
    return root


@pytest.fixture
def tiny_overrides(tiny_data_dir, tmp_path):
    """Overrides for a fast run on the tiny dataset (add method=..., train.epochs=...)."""
    return [
        "data=noisyfer", f"data.root={tiny_data_dir}", "model.backbone=resnet_tiny", "train.batch_size=32",
        "train.epochs=2", "train.lr=0.003", f"out={tmp_path / 'runs'}", "seed=0",
    ]


def kill_once_written(proc, path, *, timeout: float, kill) -> None:
    """Wait until ``path`` exists (``proc`` still running, within ``timeout`` seconds), then ``kill(proc.pid)``
    with SIGKILL and reap it: a crash at a known point of a run."""
    import signal
    import time

    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    kill(proc.pid, signal.SIGKILL)
    proc.wait()


# -- the suite writes only to temporary folders -------------------------------------------------------
_CHECKOUT = __import__("pathlib").Path(__file__).resolve().parent.parent
_BUILD_LEFTOVERS = (".venv", ".pytest_cache", "__pycache__", ".egg-info", ".eggs")


def _untracked() -> set[str] | None:
    """Untracked and ignored paths of the checkout (None outside a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=_CHECKOUT,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if not any(part in p for part in _BUILD_LEFTOVERS)}


def pytest_sessionstart(session):
    session.config._untracked_before = _untracked()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_untracked_before", None)
    after = _untracked()
    if before is None or after is None:
        return
    new = sorted(after - before)
    if new:
        print(f"\nthe test suite wrote into the checkout {_CHECKOUT}: {', '.join(new[:10])}")
        session.exitstatus = 1
