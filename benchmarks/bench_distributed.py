"""One run in 1 process against the same run in N processes (``noisyfer train --nproc N``, gloo or NCCL).

Run: ``.venv/bin/python benchmarks/bench_distributed.py [--nproc 2] [--method ce] [--faces 1024]
[--size 48] [--repeats 2] [--device cpu]``

Trains the same configuration (``train.sync_bn=true``, SGD, the same global batch) alternately in 1
and N processes, ``--repeats`` times each, and prints per launch the wall time of the whole command
(start-up included) and the training epochs' time (``time_epoch_s`` of ``metrics.jsonl``, the
loop alone), then the largest step-by-step difference of the training loss between the 1- and the
N-process runs (TensorBoard's per-step points, ``train.log_every=1``). On a shared machine compare the
ratios within one run, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from noisyfer.data.format import save_dataset
from noisyfer.data.synthetic import SynthConfig, generate


def step_losses(run_dir: Path) -> np.ndarray:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb" / "steps"))
    events.Reload()
    return np.array([e.value for e in events.Scalars("step/train_loss")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--method", default="ce")
    parser.add_argument("--faces", type=int, default=1024)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--backbone", default="resnet_small")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_dataset(generate(SynthConfig(num_train=args.faces, num_test=args.faces // 4, image_size=args.size,
                                          seed=0)), root / "data")
        common = ["data=noisyfer", f"data.root={root / 'data'}", f"model.backbone={args.backbone}",
                  f"method={args.method}", f"train.batch_size={args.batch_size}", f"train.epochs={args.epochs}",
                  "train.optimizer=sgd", "train.lr=0.05", "train.log_every=1", "train.sync_bn=true",
                  f"device={args.device}", f"out={root / 'runs'}", "seed=0"]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        times: dict[int, list[tuple[float, float]]] = {1: [], args.nproc: []}
        for repeat in range(args.repeats):
            for nproc in (1, args.nproc):
                name = f"p{nproc}-{repeat}"
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "noisyfer", "train", *common, f"name={name}",
                                "--nproc", str(nproc)], check=True, env=env, capture_output=True)
                wall = time.perf_counter() - start
                rows = [json.loads(line) for line in (root / "runs" / name / "metrics.jsonl").read_text().splitlines()]
                loop = sum(r["time_epoch_s"] for r in rows)
                times[nproc].append((wall, loop))
                print(f"{nproc} process(es), launch {repeat + 1}: wall {wall:.1f} s, training epochs {loop:.1f} s",
                      flush=True)
        for nproc, label in ((1, "1 process"), (args.nproc, f"{args.nproc} processes")):
            wall, loop = (min(t[i] for t in times[nproc]) for i in (0, 1))
            print(f"{label}: best wall {wall:.1f} s, best training epochs {loop:.1f} s")
        ratio_wall = min(t[0] for t in times[args.nproc]) / min(t[0] for t in times[1])
        ratio_loop = min(t[1] for t in times[args.nproc]) / min(t[1] for t in times[1])
        print(f"{args.nproc} processes / 1 process: wall x{ratio_wall:.2f}, training epochs x{ratio_loop:.2f}")
        one, many = step_losses(root / "runs" / "p1-0"), step_losses(root / "runs" / f"p{args.nproc}-0")
        print(f"step losses: {len(one)} steps, largest |difference| {np.abs(one - many).max():.2e} "
              f"(losses {one.min():.3f}..{one.max():.3f})")


if __name__ == "__main__":
    main()
