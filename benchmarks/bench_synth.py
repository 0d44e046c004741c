"""Throughput of the FER simulator, and load time of a stored 20k-image dataset.

Run: ``.venv/bin/python benchmarks/bench_synth.py [--faces N] [--sizes 32 64 112]``

Prints images/s of the whole pipeline (labels, annotations, rendering) with one worker and with
all cores, per image size, then how long ``load_dataset`` takes on 20,000 stored 64 px images. The
target is >= 500 images/s per core at 64 px. Numbers on a shared machine are noisy: run it when
the machine is otherwise idle, and compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from noisyfer.data.format import FERData, load_dataset, save_dataset
from noisyfer.data.synthetic import SynthConfig, generate


def throughput(size: int, faces: int, workers: int, repeats: int) -> tuple[float, float]:
    """Best images/s of wall-clock time, and of CPU time (all processes), over ``repeats`` runs of
    ``generate`` (train split only). The CPU-time rate is the per-core speed even when other
    processes share the cores."""
    config = SynthConfig(num_train=faces, num_test=0, image_size=size, seed=0)
    best_wall = best_cpu = 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), os.times()
        generate(config, workers=workers)
        t1, c1 = time.perf_counter(), os.times()
        fields = ("user", "system", "children_user", "children_system")
        cpu = sum(getattr(c1, k) - getattr(c0, k) for k in fields)
        best_wall = max(best_wall, faces / (t1 - t0))
        best_cpu = max(best_cpu, faces / max(cpu, 1e-9))
    return best_wall, best_cpu


def load_time(num_images: int = 20000, size: int = 64) -> tuple[float, float]:
    """Seconds to ``load_dataset`` ``num_images`` stored images, and to then read them all."""
    seed_data = generate(SynthConfig(num_train=512, num_test=0, image_size=size), workers=0)["train"]
    reps = -(-num_images // len(seed_data))
    idx = np.tile(np.arange(len(seed_data)), reps)[:num_images]
    big = seed_data.subset(idx)
    with tempfile.TemporaryDirectory() as tmp:
        root = save_dataset({"train": big}, Path(tmp) / "d")
        start = time.perf_counter()
        splits = load_dataset(root)
        loaded = time.perf_counter() - start
        train: FERData = splits["train"]
        assert len(train) == num_images
        start = time.perf_counter()
        total = int(np.asarray(train.images).sum(dtype=np.int64))  # touch every byte
        read = time.perf_counter() - start
        assert total > 0
    return loaded, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1024, help="faces per measurement at 64 px")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 112])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; load average: {os.getloadavg()[0]:.2f} (other processes skew numbers)")
    print(
        f"{'size':>5} {'1 worker img/s':>15} {'(per CPU-s)':>12} "
        f"{f'{cores} workers img/s':>18} {'(per CPU-s)':>12} {'speed-up':>9}"
    )
    for size in args.sizes:
        faces = max(128, int(args.faces * (64 / size) ** 2))
        one, one_cpu = throughput(size, faces, 1, args.repeats)
        many, many_cpu = throughput(size, faces * cores, 0, args.repeats)
        print(
            f"{size:>5} {one:>15.0f} {one_cpu:>12.0f} {many:>18.0f} {many_cpu:>12.0f} "
            f"{many / one:>8.2f}x"
        )
    loaded, read = load_time()
    print(f"load_dataset of 20000 64x64 images: {loaded * 1000:.1f} ms (memory-mapped); "
          f"reading every pixel then: {read * 1000:.0f} ms")


if __name__ == "__main__":
    main()
