"""Input pipeline on a RAF-DB-sized fixture: cache build, batches per second, training throughput.

Usage::

    .venv/bin/python benchmarks/bench_input_pipeline.py                     # writes /tmp/noisyfer_bench_raf once
    .venv/bin/python benchmarks/bench_input_pipeline.py --root DIR --num-train 12271 --num-test 3068
    .venv/bin/python benchmarks/bench_input_pipeline.py --quick             # small sizes, a smoke test

Figures, all measured in one run so that the ratios are comparable (absolute numbers depend on what
else shares the cores). On a shared machine other processes take the cores in bursts of seconds, so
(b) and (c) alternate short phases of each pipeline (each sees the same bursts); (b) reports the
median phase, (c) the fastest and the median training step.

(a) building the decoded cache from the JPEG tree (images/s), and loading it again (seconds);
(b) the input pipeline alone, augmented batches without a model: noisyfer's ``TensorLoader`` +
    ``Augmenter.train`` against a per-sample PIL + ``DataLoader`` pipeline of the kind the official
    repositories use (decode, resize, flip, to-tensor, normalise, random erasing per sample, in
    worker processes);
(c) CE training steps (forward, backward, Adam; fetching the batch included) fed by noisyfer's
    pipeline, against the same model stepping on pre-made random batches (the model-only ceiling):
    ResNet-18 at 112 px and the small ResNet at 48 px; the per-sample pipeline feeding ResNet-18 at
    112 px for comparison.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from noisyfer.config import AugmentConfig, DataConfig, build_options
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import write_rafdb
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.engine.loader import TensorLoader
from noisyfer.methods.ce import CEOptions
from noisyfer.models import create_backbone
from noisyfer.registry import DATASETS

CPU = torch.device("cpu")


class PerSampleRafdb(Dataset):
    """The official repositories' pipeline: one PIL image at a time, in DataLoader workers."""

    def __init__(self, root: Path, names: list[str], labels: np.ndarray, size: int, config: AugmentConfig):
        self.paths = [str(root / n) for n in names]
        self.labels = labels
        self.size = size
        self.mean = torch.tensor(config.mean).view(3, 1, 1)
        self.std = torch.tensor(config.std).view(3, 1, 1)
        self.erase_p, self.erase_scale = config.erasing, config.erasing_scale

    def __len__(self) -> int:
        return len(self.paths)

    def _erase(self, x: torch.Tensor) -> torch.Tensor:  # torchvision's RandomErasing algorithm
        if torch.rand(1).item() >= self.erase_p:
            return x
        area = self.size * self.size
        for _ in range(10):
            target = area * torch.empty(1).uniform_(*self.erase_scale).item()
            ratio = math.exp(torch.empty(1).uniform_(math.log(0.3), math.log(3.3)).item())
            h, w = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if h < self.size and w < self.size:
                top = int(torch.randint(0, self.size - h + 1, (1,)))
                left = int(torch.randint(0, self.size - w + 1, (1,)))
                x[:, top:top + h, left:left + w] = 0
                return x
        return x

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as image:
            image = image.convert("RGB")
        image = image.resize((self.size, self.size), Image.BILINEAR)
        if torch.rand(1).item() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
        return self._erase((x - self.mean) / self.std), int(self.labels[i])


def read_rafdb(root: Path, cache: Path, size: int, workers: int):
    config = DataConfig(name="rafdb", root=str(root), cache_dir=str(cache), image_size=size)
    options = build_options(DATASETS.get("rafdb").options, {"workers": workers}, section="data")
    return create_dataset(config, options)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def median_ms(fn, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_cache(root: Path, cache: Path, size: int, workers: int) -> tuple[float, float, dict]:
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    splits = read_rafdb(root, cache, size, workers)
    build = time.perf_counter() - start
    loads = []
    for _ in range(2):
        start = time.perf_counter()
        splits = read_rafdb(root, cache, size, workers)
        loads.append(time.perf_counter() - start)
    load = min(loads)
    total = sum(len(s) for s in splits.values())
    return rate(total, build), load, splits


def reference_loader(root: Path, train, size: int, workers: int, batch: int) -> DataLoader:
    dataset = PerSampleRafdb(root, list(train.columns["path"]), train.labels, size, AugmentConfig())
    return DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                      persistent_workers=workers > 0)


def forever(loader: DataLoader):
    while True:
        yield from loader


def ours_forever(loader: TensorLoader, augment: Augmenter | None = None):
    """Batches of noisyfer's pipeline: ``(images, labels)``, augmented when ``augment`` is given."""
    epoch = 1
    while True:
        for batch in loader.train_batches(seed=0, epoch=epoch):
            yield (augment.train(batch.images) if augment is not None else batch.images), batch.labels
        epoch += 1


def random_batches(size: int, batch: int, pool: int = 32):
    """A pool of random normalised batches with random labels, cycled."""
    augment = Augmenter(AugmentConfig(), image_size=size)
    batches = [(augment.normalize(torch.rand(batch, 3, size, size)), torch.randint(0, 7, (batch,)))
               for _ in range(pool)]
    while True:
        yield from batches


def phase_rate(batches, count: int, skip: int) -> float:
    """Images/s over ``count`` batches drawn from ``batches`` after ``skip`` (ready-made ones)."""
    for _ in range(skip):
        next(batches)
    start, done = time.perf_counter(), 0
    for _ in range(count):
        done += next(batches)[0].shape[0]
    return rate(done, time.perf_counter() - start)


def make_method(backbone: str, size: int):
    torch.manual_seed(0)
    augment = Augmenter(AugmentConfig(), image_size=size)
    method = create_method("ce", backbone=create_backbone(backbone, num_classes=None), num_classes=7, num_train=1,
                           options=CEOptions(), augment=augment, image_size=size)
    method.train()
    return method, torch.optim.Adam(method.parameters(), lr=1e-4)


def step_times(method, optimizer, batches, augment: bool, steps: int) -> list[float]:
    """Wall time of each CE step, fetching its batch included; the first step of a phase is dropped."""
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        images, labels = next(batches)
        x = method.augment.train(images) if augment else images
        loss = F.cross_entropy(method(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(), "noisyfer_bench_raf"),
                        help="RAF-DB fixture tree (written there when missing)")
    parser.add_argument("--num-train", type=int, default=12271)
    parser.add_argument("--num-test", type=int, default=3068)
    parser.add_argument("--workers", type=int, default=0, help="decode / DataLoader processes (0: all cores)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pipeline-batches", type=int, default=40, help="batches per phase in (b)")
    parser.add_argument("--drain", type=float, default=1.0,
                        help="pause (s) before each phase of (b), while the other pipeline's prefetching ends")
    parser.add_argument("--steps112", type=int, default=6, help="steps per phase at 112 px in (c)")
    parser.add_argument("--steps48", type=int, default=12, help="steps per phase at 48 px in (c)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating phases per pipeline in (b) and (c)")
    parser.add_argument("--no-reference-training", action="store_true")
    parser.add_argument("--no-training", action="store_true", help="skip (c): cache and input pipeline only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    args = parser.parse_args()
    if args.quick:
        args.root = os.path.join(tempfile.gettempdir(), "noisyfer_bench_raf_quick")
        args.num_train, args.num_test, args.pipeline_batches, args.drain = 256, 64, 2, 0.0
        args.steps112, args.steps48, args.rounds = 2, 2, 2
    workers = args.workers or len(os.sched_getaffinity(0))
    torch.manual_seed(0)
    root = Path(args.root)
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    marker = root / ".noisyfer_bench_fixture"  # only a tree this script wrote is ever deleted
    if not label_file.is_file() or sum(1 for _ in open(label_file)) != args.num_train + args.num_test:
        if root.exists() and any(root.iterdir()) and not marker.is_file():
            sys.exit(f"--root {root}: holds other files than a fixture this script wrote, with another number of "
                     "images; give an empty or new folder (or a RAF-DB copy of --num-train + --num-test images)")
        shutil.rmtree(root, ignore_errors=True)
        start = time.perf_counter()
        write_rafdb(root, num_train=args.num_train, num_test=args.num_test, size=100, workers=workers)
        marker.touch()
        print(f"fixture: {args.num_train} + {args.num_test} JPEGs of 100x100 written in "
              f"{time.perf_counter() - start:.0f} s to {root}")
    cache = Path(tempfile.mkdtemp(prefix="noisyfer_bench_cache_"))
    print(f"torch threads {torch.get_num_threads()}, {workers} worker processes, batch {args.batch}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    try:
        build112, load112, splits112 = bench_cache(root, cache / "s112", 112, workers)
        build48, load48, splits48 = bench_cache(root, cache / "s48", 48, workers)
        total = sum(len(s) for s in splits112.values())
        print(f"\n(a) cache build: {build112:.0f} images/s at 112 px, {build48:.0f} images/s at 48 px "
              f"({total} images); cached load (best of 2) {load112:.2f} s (112 px), {load48:.2f} s (48 px)")

        train112, train48 = splits112["train"], splits48["train"]
        augment112 = Augmenter(AugmentConfig(), image_size=112)
        loader112 = TensorLoader(train112, batch_size=args.batch, device=CPU)
        reference = reference_loader(root, train112, 112, workers, args.batch)
        ours_stream, reference_stream = ours_forever(loader112, augment112), forever(reference)
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternating phases, so both see the same load on the cores
            # the reference's workers keep decoding ahead (prefetch_factor batches each) after its phase
            # ends; let that drain so that it is not charged to the next phase
            time.sleep(args.drain)
            ours.append(phase_rate(ours_stream, args.pipeline_batches, skip=2))
            time.sleep(args.drain)
            theirs.append(phase_rate(reference_stream, args.pipeline_batches, skip=2 * workers + 1))
        batch = loader112.batch(torch.arange(args.batch))
        time.sleep(args.drain)
        gather = median_ms(lambda: loader112.batch(torch.randperm(len(train112))[:args.batch]))
        augment_ms = median_ms(lambda: augment112.train(batch.images))
        ours_rate, theirs_rate = statistics.median(ours), statistics.median(theirs)
        print(f"\n(b) input pipeline at 112 px, no model (median of {args.rounds} alternating phases): noisyfer "
              f"{ours_rate:.0f} images/s (median batch {gather:.1f} ms + augment {augment_ms:.1f} ms per "
              f"{args.batch}), per-sample PIL + DataLoader({workers} workers) {theirs_rate:.0f} images/s: "
              f"ratio {ours_rate / theirs_rate:.2f}x (target >= 5x)")
        print(f"      phases: noisyfer {[round(v) for v in ours]}, per-sample {[round(v) for v in theirs]}")

        if args.no_training:
            return
        print("\n(c) CE training, images/s = batch / step time (fastest: the undisturbed cost, since other "
              "processes only add time; median: typical), alternating phases:")
        cases = [("resnet18", 112, train112, args.steps112, 0.95), ("resnet_small", 48, train48, args.steps48, 0.90)]
        for backbone, size, data, steps, target in cases:
            method, optimizer = make_method(backbone, size)
            loader = TensorLoader(data, batch_size=args.batch, device=CPU)
            streams = {"ceiling": (random_batches(size, args.batch), False),
                       "noisyfer": (ours_forever(loader), True)}
            if backbone == "resnet18" and not args.no_reference_training:
                streams["per-sample"] = (reference_stream, False)
            times: dict[str, list[float]] = {name: [] for name in streams}
            for _ in range(args.rounds):
                for name, (stream, augment) in streams.items():
                    times[name].extend(step_times(method, optimizer, stream, augment, steps))
            for label, pick in (("fastest step", min), ("median step", statistics.median)):
                speed = {name: args.batch / pick(t) for name, t in times.items()}
                line = (f"    {backbone} {size} px, {label}: model-only ceiling {speed['ceiling']:.1f}, noisyfer "
                        f"pipeline {speed['noisyfer']:.1f} = {speed['noisyfer'] / speed['ceiling']:.1%} of the ceiling "
                        f"(target >= {target:.0%})")
                if "per-sample" in speed:
                    line += (f"; per-sample pipeline {speed['per-sample']:.1f} = "
                             f"{speed['per-sample'] / speed['ceiling']:.1%}")
                print(line)
            quartiles = {name: [round(q, 3) for q in statistics.quantiles(t, n=4)] for name, t in times.items()}
            print(f"      step-time quartiles (s): {quartiles}")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes on the cores make figures noisy)")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
