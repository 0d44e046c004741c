"""LDLVA's neighbour sources compared: the per-sample memory bank against forwarding the neighbours.

Usage::

    .venv/bin/python benchmarks/bench_ldlva.py                       # simulator as the sim configs, 8 epochs
    .venv/bin/python benchmarks/bench_ldlva.py --num-train 1200 --num-test 400 --epochs 4   # quicker
    .venv/bin/python benchmarks/bench_ldlva.py --num-train 1000 --num-test 700 --image-size 32 --epochs 30 \
        --noise-rate 0.4 --set model.pretrained=runs/sim_pretrain/best_model.pt --set train.lr=0.001

Trains ``ldlva`` twice through the engine with the same seed, data and noise: ``neighbours=memory``
(noisyfer's default) and ``neighbours=forward`` (the public code's K extra forwards per sample). For
each it reports test accuracy (best and last epoch, balanced), wall time per epoch, and how close the
learned training label distributions of the last epoch are to the simulator's true ``label_dist``
(mean KL, against the one-hot given labels; see
:func:`noisyfer.methods.label_distribution.compare_label_distributions`). Both runs happen in one
process so the time ratio is comparable; absolute times depend on what else shares the cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import noisyfer
from noisyfer.config import config_from_args
from noisyfer.data.datasets import create_dataset
from noisyfer.methods.label_distribution import compare_label_distributions
from noisyfer.noise import load_noisy_labels


def run(mode: str, args: argparse.Namespace, out: Path) -> dict:
    overrides = [
        "method=ldlva", f"method.neighbours={mode}", "data=synthetic", f"data.image_size={args.image_size}",
        f"data.num_train={args.num_train}", f"data.num_test={args.num_test}", "noise.kind=symmetric",
        f"noise.rate={args.noise_rate}", "noise.seed=0", f"model.backbone={args.backbone}",
        f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}", "train.lr=0.002",
        "train.schedule=cosine", "train.warmup_epochs=1", "augment.erasing=0.0", f"seed={args.seed}",
        f"device={args.device}", f"out={out}", f"name=ldlva_{mode}",
        *args.set,
    ]
    cfg = config_from_args(None, overrides)
    started = time.perf_counter()
    result = noisyfer.train(cfg)
    elapsed = time.perf_counter() - started
    summary = result.summary
    train = create_dataset(cfg.data, cfg.data_options)["train"]
    labels = load_noisy_labels(result.run_dir / "train_labels.csv", num_samples=len(train),
                               num_classes=train.num_classes)
    record = np.load(result.run_dir / "samples" / f"epoch_{args.epochs:03d}.npz")
    closeness = compare_label_distributions(record["label_dist"], train.columns["label_dist"], labels.labels)
    epoch_times = [json.loads(line)["time_epoch_s"] for line in (result.run_dir / "metrics.jsonl").open()]
    return {
        "mode": mode,
        "accuracy_best": summary["accuracy_best"],
        "accuracy_last": summary["accuracy_last"],
        "balanced_last": summary["balanced_accuracy_last"],
        "s_per_epoch": float(np.mean(epoch_times)),
        "total_s": elapsed,
        "lambda_mean": float(record["lambda"].mean()),
        **closeness,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-train", type=int, default=6000)
    parser.add_argument("--num-test", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--backbone", default="resnet_small")
    parser.add_argument("--noise-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="run directory root (default: a temporary directory)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for both runs, e.g. model.pretrained=runs/sim_pretrain/best_model.pt "
                             "(repeatable; method.neighbours is the benchmark's)")
    args = parser.parse_args()
    if any(entry.split("=", 1)[0] == "method.neighbours" for entry in args.set):
        parser.error("--set method.neighbours: the benchmark runs both neighbour sources itself")

    with tempfile.TemporaryDirectory(prefix="bench_ldlva_") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        rows = [run(mode, args, out) for mode in ("memory", "forward")]

    print(f"\nLDLVA neighbour sources: simulator {args.num_train} train / {args.num_test} test, "
          f"{args.image_size} px, {args.backbone}, {args.noise_rate:.0%} symmetric noise, {args.epochs} epochs"
          + (f"; {' '.join(args.set)}" if args.set else ""))
    columns = ["mode", "accuracy_best", "accuracy_last", "balanced_last", "s_per_epoch", "lambda_mean",
               "kl_learned", "kl_one_hot", "argmax_learned", "argmax_given"]
    print(" | ".join(f"{c:>14}" for c in columns))
    for row in rows:
        print(" | ".join(f"{row[c]:>14.4f}" if isinstance(row[c], float) else f"{row[c]:>14}" for c in columns))
    memory, forward = rows
    print(f"time per epoch, forward / memory: {forward['s_per_epoch'] / memory['s_per_epoch']:.2f}x")


if __name__ == "__main__":
    main()
