"""Training throughput on an accelerator against its ceiling: the papers' ResNet-18 at 224 and 112 px.

Usage::

    .venv/bin/python benchmarks/bench_accelerator.py --device cuda                 # part of gpu_check.sh
    .venv/bin/python benchmarks/bench_accelerator.py --device cpu --quick          # a smoke test here

For each image side (224, 112) and batch size (64, 256), CE training steps (forward, backward, Adam,
fetching the batch included) in images/s, each pipeline in alternating phases so that all see the
same conditions:

- ``ceiling``: the model stepping on ready-made random batches already on the device;
- ``noisyfer``: the engine's pipeline, the decoded split held as a uint8 tensor on the device
  (``TensorLoader``), batch augmentation on the device (``Augmenter.train``);
- ``per-sample``: the official repositories' pipeline, PIL decode + resize + flip + erasing per sample
  in ``DataLoader`` workers (all CPU cores), pinned memory, copied to the device each step;
- ``channels_last`` and ``compile`` variants of the ceiling and of noisyfer's pipeline (the
  engine's ``train.channels_last`` and ``train.compile``), with mixed precision as the engine uses it
  (bf16 autocast on CUDA, ``--amp``).

Target: noisyfer >= 90 % of the ceiling of the same variant. The per-sample pipeline is expected to
fall far below it on a fast accelerator (its workers decode JPEGs on the CPU).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from bench_input_pipeline import make_method, read_rafdb, reference_loader  # noqa: E402

from noisyfer.config import AugmentConfig  # noqa: E402
from noisyfer.data.fixtures import write_rafdb  # noqa: E402
from noisyfer.engine.augment import Augmenter  # noqa: E402
from noisyfer.engine.loader import TensorLoader  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling_stream(size: int, batch: int, device: torch.device, channels_last: bool, pool: int = 8):
    augment = Augmenter(AugmentConfig(), image_size=size)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    batches = [(augment.normalize(torch.rand(batch, 3, size, size, device=device)).contiguous(memory_format=fmt),
                torch.randint(0, 7, (batch,), device=device)) for _ in range(pool)]
    while True:
        yield from batches


def noisyfer_stream(loader: TensorLoader, augment: Augmenter, channels_last: bool):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    epoch = 1
    while True:
        for batch in loader.train_batches(seed=0, epoch=epoch):
            yield augment.train(batch.images).contiguous(memory_format=fmt), batch.labels
        epoch += 1


def per_sample_stream(loader, device: torch.device):
    while True:
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def step_rates(method, optimizer, stream, steps: int, batch: int, device: torch.device, amp: bool) -> list[float]:
    """Images/s of ``steps`` CE steps, each timed to the end of its work on the device."""
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else nullcontext()
    rates = []
    for i in range(steps + 1):
        _sync(device)
        start = time.perf_counter()
        images, labels = next(stream)
        with autocast:
            loss = F.cross_entropy(method(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        if i:  # the first step of a phase pays for the switch between pipelines
            rates.append(batch / (time.perf_counter() - start))
    return rates


def bench_case(size: int, batch: int, args, device: torch.device, splits: dict, root: Path) -> list[str]:
    train = splits[size]["train"]
    variants = [("plain", False, False)]
    if args.channels_last:
        variants.append(("channels_last", True, False))
    if args.compile and f"{size}x{batch}" in args.compile_cases.split(","):
        variants.append(("compile", False, True))
    lines = []
    reference = None
    if not args.no_reference:
        reference = per_sample_stream(reference_loader(root, train, size, args.workers, batch), device)
    for variant, channels_last, compiled in variants:
        method, optimizer = make_method("resnet18", size)
        method.to(device)
        if channels_last:
            method.to(memory_format=torch.channels_last)
        if compiled:
            method.backbone.compile()
        augment = Augmenter(AugmentConfig(), image_size=size)
        loader = TensorLoader(train, batch_size=batch, device=device)
        streams = {"ceiling": ceiling_stream(size, batch, device, channels_last),
                   "noisyfer": noisyfer_stream(loader, augment, channels_last)}
        if variant == "plain" and reference is not None:
            streams["per-sample"] = reference
        for stream in streams.values():  # warm-up: cudnn autotuning, compilation, worker start
            step_rates(method, optimizer, stream, args.warmup, batch, device, args.amp)
        rates: dict[str, list[float]] = {name: [] for name in streams}
        for _ in range(args.rounds):
            for name, stream in streams.items():
                rates[name].extend(step_rates(method, optimizer, stream, args.steps, batch, device, args.amp))
        median = {name: statistics.median(r) for name, r in rates.items()}
        line = (f"| {size} | {batch} | {variant} | {median['ceiling']:.0f} | {median['noisyfer']:.0f} "
                f"({median['noisyfer'] / median['ceiling']:.1%}) |")
        line += (f" {median['per-sample']:.0f} ({median['per-sample'] / median['ceiling']:.1%}) |"
                 if "per-sample" in median else " - |")
        lines.append(line)
        print(line, flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="224,112")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternating phases per pipeline")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per pipeline before the phases")
    parser.add_argument("--num-train", type=int, default=4096, help="faces in the RAF-DB fixture (100 px JPEGs)")
    parser.add_argument("--workers", type=int, default=0, help="per-sample pipeline workers (0: all cores)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default: on for CUDA, off on the CPU)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile-cases", default="224x256",
                        help="SIDExBATCH cases that also run compiled (each compilation takes about a minute)")
    parser.add_argument("--no-reference", action="store_true", help="skip the per-sample pipeline")
    parser.add_argument("--quick", action="store_true", help="48 px, batch 16, 2 steps: a smoke test")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    args.amp = device.type == "cuda" if args.amp is None else args.amp
    args.workers = args.workers or len(os.sched_getaffinity(0))
    if args.quick:
        args.sizes, args.batches, args.steps, args.rounds, args.warmup, args.num_train = "48", "16", 2, 1, 1, 128
        args.compile_cases = "48x16"
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; bf16 autocast {'on' if args.amp else 'off'}; "
          f"per-sample pipeline with {args.workers} workers\n")
    root = Path(tempfile.gettempdir()) / f"noisyfer_bench_accel_raf_{args.num_train}"
    if not (root / "EmoLabel" / "list_patition_label.txt").is_file():
        shutil.rmtree(root, ignore_errors=True)
        write_rafdb(root, num_train=args.num_train, num_test=64, size=100, workers=args.workers)
    cache = Path(tempfile.mkdtemp(prefix="noisyfer_bench_accel_cache_"))
    try:
        splits = {size: read_rafdb(root, cache / f"s{size}", size, args.workers) for size in sizes}
        print("| side (px) | batch | variant | ceiling (images/s) | noisyfer (% of ceiling) | per-sample (% of ceiling) |")
        print("|---|---|---|---|---|---|")
        for size in sizes:
            for batch in batches:
                bench_case(size, batch, args, device, splits, root)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
