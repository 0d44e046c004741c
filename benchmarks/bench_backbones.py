"""Training throughput of the backbones: forward + backward + Adam step on random batches.

Usage::

    .venv/bin/python benchmarks/bench_backbones.py                    # default table
    .venv/bin/python benchmarks/bench_backbones.py --cases resnet_small:64 resnet18:112 --steps 20
    .venv/bin/python benchmarks/bench_backbones.py --options resnet_small:widths=24,48,96,192

Images per second are measured in one run so that ratios between backbones are comparable; absolute
figures depend on what else shares the cores. Uses CUDA when available unless ``--device cpu``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from noisyfer.models import create_backbone

DEFAULT_CASES = (
    "resnet_tiny:48",
    "resnet_tiny:64",
    "resnet_small:48",
    "resnet_small:64",
    "resnet_small:112",
    "resnet18:112",
)


def parse_options(specs: list[str]) -> dict[str, dict[str, object]]:
    """``name:key=v1,v2`` -> {name: {key: (v1, v2)}} (ints; a single value stays a scalar)."""
    options: dict[str, dict[str, object]] = {}
    for spec in specs:
        name, _, assignment = spec.partition(":")
        key, _, value = assignment.partition("=")
        numbers = tuple(int(v) for v in value.split(","))
        options.setdefault(name, {})[key] = numbers if len(numbers) > 1 else numbers[0]
    return options


def images_per_second(
    name: str, size: int, *, batch: int, steps: int, warmup: int, device: torch.device, options: dict
) -> tuple[float, int]:
    torch.manual_seed(0)
    model = create_backbone(name, num_classes=7, **options).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 7, (batch,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images).logits, labels)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    spatial = model(images[:1]).feature_map.shape[-1]
    return batch * steps / elapsed, spatial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), help="name:size pairs")
    parser.add_argument("--options", nargs="*", default=[], help="name:key=v[,v...] backbone options")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    options = parse_options(args.options)

    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, {args.steps} steps")
    print(f"{'backbone':<14} {'px':>4} {'params':>10} {'map':>5} {'img/s':>9}")
    for case in args.cases:
        name, _, size = case.partition(":")
        params = sum(p.numel() for p in create_backbone(name, num_classes=7, **options.get(name, {})).parameters())
        rate, spatial = images_per_second(
            name, int(size), batch=args.batch, steps=args.steps, warmup=args.warmup,
            device=device, options=options.get(name, {}),
        )
        print(f"{name:<14} {size:>4} {params:>10,} {spatial:>2}x{spatial:<2} {rate:>9.1f}")


if __name__ == "__main__":
    main()
