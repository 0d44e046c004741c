"""DMUE's K+1 last stages: one forward per branch ("loop") against one vmapped forward ("batched").

Usage::

    .venv/bin/python benchmarks/bench_dmue_branches.py --backbone resnet18 --image-size 224 --batch 72
    .venv/bin/python benchmarks/bench_dmue_branches.py --backbone resnet_small --image-size 48 --batch 64

Times forward + backward of the branch stages alone (``BranchStages`` on a fixed layer3 output, train
mode) and of a whole DMUE training step, for both modes, on the chosen device, interleaved, and
prints the median times and the loop / batched ratio. Ratios within one run are what to read on a
shared machine; the absolute times are not comparable across runs there.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.methods.base import Batch
from noisyfer.methods.dmue import DMUEOptions
from noisyfer.models import create_backbone


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet_small")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    methods = {}
    for mode in ("loop", "batched"):
        torch.manual_seed(0)
        method = create_method("dmue", backbone=create_backbone(args.backbone), num_classes=args.classes,
                               num_train=args.batch, options=DMUEOptions(branch_forward=mode),
                               augment=Augmenter(AugmentConfig(), image_size=args.image_size),
                               image_size=args.image_size).to(device)
        methods[mode] = method.train()
    labels = torch.arange(args.batch, device=device) % args.classes
    batch = Batch(images=torch.rand(args.batch, 3, args.image_size, args.image_size, device=device), labels=labels,
                  indices=torch.arange(args.batch, device=device), host_labels=labels.cpu())
    with torch.no_grad():
        trunk = methods["loop"].backbone.forward_until(methods["loop"].augment.train(batch.images), "layer3")

    def stages(mode):
        method = methods[mode]
        method.branches(trunk, method.backbone.layer4).square().mean().backward()

    def step(mode):
        methods[mode].training_step(batch, epoch=20).loss.backward()

    times = {(kind, mode): [] for kind in ("stages", "step") for mode in methods}
    for kind, fn in (("stages", stages), ("step", step)):
        for mode in methods:  # warm-up
            fn(mode)
        for _ in range(args.repeats):
            for mode in methods:
                times[(kind, mode)].append(_timed(lambda: fn(mode), device))
    print(f"device {device}, {args.backbone} at {args.image_size} px, batch {args.batch}, K = {args.classes}")
    for kind in ("stages", "step"):
        loop = statistics.median(times[(kind, "loop")])
        batched = statistics.median(times[(kind, "batched")])
        print(f"{kind:7s} loop {loop * 1000:8.1f} ms   batched {batched * 1000:8.1f} ms   loop/batched {loop / batched:.2f}")


if __name__ == "__main__":
    main()
