"""Method overhead: each method's training epoch against ``ce``'s, next to its FLOP ratio.

Usage::

    .venv/bin/python benchmarks/bench_overhead.py                       # both settings, every method
    .venv/bin/python benchmarks/bench_overhead.py --settings small48 --methods ce,elr,scn --epochs 3
    .venv/bin/python benchmarks/bench_overhead.py --quick               # a smoke test (seconds)
    .venv/bin/python benchmarks/bench_overhead.py --device cuda --amp on    # on an accelerator
    .venv/bin/python benchmarks/bench_overhead.py --threads 1 --clock cpu   # on a busy machine

Every registered method trains on the same simulated faces with the same backbone, class-balanced
sampler and batch size, through the engine's own epoch (``Trainer._train_epoch`` plus the method's
``on_epoch_end``; evaluation is left out). The methods' epochs are interleaved round by round, so that
a burst of load from another process hits every method alike. Every step is timed (from one batch
request to the next); a method's epoch is its median step times the steps per epoch plus its fastest
``on_epoch_end``, and the measured ratio is that against ``ce``'s (the ratio of the fastest whole epochs
is printed beside it). Each round starts with another method (:func:`round_order`).

``--clock wall`` (default) times what a user waits. On a machine shared with other work, ``--threads 1
--clock cpu`` times this process's CPU time instead: with one thread that is the work done, far less
disturbed by other processes (cache and memory-bandwidth contention remain), and the ratios between
methods are those of a one-thread run.

The FLOP ratio is counted, not assumed: one training step (forward and backward, same batch) under
``torch.utils.flop_counter.FlopCounterMode``, against ``ce``'s step. Two views per sample (EAC, SMEC,
NCCTFER) give about 2; DMUE's K + 1 branches more. ``overhead = measured ratio / FLOP ratio`` is what a
method costs beyond its arithmetic: bookkeeping of per-sample state, Python loops, host-device
round trips, recomputed forwards. Methods are measured in their steady state (relabeling and
negative-class phases switched on from epoch 1, see ``STEADY_STATE``).

Settings: ``small48`` (``resnet_small`` at 48 px, 1,280 faces) and ``resnet18_112`` (ResNet-18 at 112 px,
256 faces on the CPU, 1,280 on CUDA).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import noisyfer
from noisyfer.engine.rundir import RunDirectory
from noisyfer.engine.trainer import Trainer
from noisyfer.registry import METHODS

#: Overrides that put a method in the phase whose cost users pay for most of a run: SCN-style
#: relabeling (from epoch 10 by default) and NCCTFER's two-view phase (after 5 warm-up epochs of CE).
STEADY_STATE = {
    "scn": ("method.relabel_epoch=1",),
    "scn_c": ("method.relabel_epoch=1",),
    "ncctfer": ("method.warmup_epochs=0",),
}

#: Targets of the measured ratio to ``ce``: ("ratio", x) bounds the measured ratio itself,
#: ("flops", x) bounds it at x times the method's FLOP ratio (the default for a method not listed).
TARGETS = {
    "ce": ("ratio", 1.1), "scn": ("ratio", 1.1), "scn_c": ("ratio", 1.1), "rul": ("ratio", 1.1),
    "rul_c": ("ratio", 1.1), "lrn": ("ratio", 1.1), "elr": ("ratio", 1.1), "ldlva": ("ratio", 1.3),
}

SETTINGS = {
    "small48": {"backbone": "resnet_small", "image_size": 48, "num_train": 1280},
    "resnet18_112": {"backbone": "resnet18", "image_size": 112, "num_train": 256, "num_train_cuda": 1280},
}


@dataclass
class Row:
    method: str
    flops: float
    steps_per_epoch: int
    epochs_s: list[float] = field(default_factory=list)
    steps_s: list[float] = field(default_factory=list)
    epoch_end_s: list[float] = field(default_factory=list)

    @property
    def fastest(self) -> float:
        return min(self.epochs_s)

    @property
    def typical_epoch(self) -> float:
        """Median step x steps per epoch + the fastest ``on_epoch_end``: an epoch without the bursts of
        other processes (a step is a fraction of a second, a burst of load seconds; the median step
        of several epochs is one the burst did not hit)."""
        return statistics.median(self.steps_s) * self.steps_per_epoch + min(self.epoch_end_s)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def _config(method: str, setting: dict, args, out: str):
    num_train = setting.get("num_train_cuda", setting["num_train"]) if args.device.startswith("cuda") \
        else setting["num_train"]
    if args.quick:
        num_train = 128
    overrides = [
        f"method={method}", "data=synthetic", f"data.num_train={num_train}", f"data.num_test={64}",
        f"data.image_size={setting['image_size']}", f"model.backbone={setting['backbone']}",
        "train.sampler=balanced", f"train.batch_size={args.batch_size}", f"train.epochs={args.epochs + 1}",
        f"train.amp=\"{args.amp}\"", f"device={args.device}", f"out={out}", "seed=0",
        "noise.kind=symmetric", "noise.rate=0.2", *STEADY_STATE.get(method, ()),
    ]
    return noisyfer.config_from_args(None, overrides)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_step_flops(trainer: Trainer, *, epoch: int) -> float:
    """FLOPs of one training step (forward and backward) of ``trainer``'s method on its first batch."""
    method = trainer.method
    method.train()
    batch = next(iter(trainer.train_loader.train_batches(seed=123, epoch=epoch, sampler=trainer.cfg.train.sampler,
                                                         drop_last=True)))
    counter = FlopCounterMode(display=False)
    with counter:
        with trainer.precision.autocast():
            out = method.training_step(batch, epoch=epoch)
        if out.loss is not None:
            out.loss.backward()
    for opt in trainer.optimizers:
        opt.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


#: The clock of every timing: ``wall`` (time.perf_counter, what a user waits) or ``cpu`` (this process's
#: CPU time, time.process_time: with ``--threads 1`` it is the work done, whatever else runs on the machine).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class _StepClock:
    """Wraps the loader's epoch iterator: the time from one batch request to the next is one full step
    (batch, forward, backward, optimizer, the engine's bookkeeping)."""

    def __init__(self, trainer: Trainer, clock):
        self.trainer = trainer
        self.clock = clock
        self.batches = trainer.train_loader.train_batches
        self.steps: list[float] = []
        trainer.train_loader.train_batches = self

    def __call__(self, **kwargs):
        device = self.trainer.device
        previous = None
        for batch in self.batches(**kwargs):
            _sync(device)
            now = self.clock()
            if previous is not None:
                self.steps.append(now - previous)
            previous = now
            yield batch
        if previous is not None:  # the epoch's last step ends when the loop asks for more
            _sync(device)
            self.steps.append(self.clock() - previous)


def timed_epoch(trainer: Trainer, epoch: int, row: Row | None = None, *, clock=time.perf_counter) -> float:
    step_clock = trainer.train_loader.train_batches
    if not isinstance(step_clock, _StepClock):
        step_clock = _StepClock(trainer, clock)
    step_clock.steps.clear()
    _sync(trainer.device)
    start = clock()
    trainer._train_epoch(epoch, _NoBar())
    _sync(trainer.device)
    middle = clock()
    trainer.method.on_epoch_end(epoch)
    _sync(trainer.device)
    end = clock()
    if row is not None:
        row.epochs_s.append(end - start)
        row.steps_s.extend(step_clock.steps)
        row.epoch_end_s.append(end - middle)
    return end - start


def round_order(names: list[str], *, round_index: int, rounds: int) -> list[str]:
    """The methods in the order of one round: every round starts elsewhere in the list, spread over the
    rounds, so that no method always runs first (right after the previous round's last and heaviest)."""
    shift = round_index * max(len(names) // max(rounds, 1), 1) % len(names)
    return names[shift:] + names[:shift]


def measure(setting_name: str, methods: list[str], args) -> list[Row]:
    setting = SETTINGS[setting_name]
    with tempfile.TemporaryDirectory(prefix="noisyfer_overhead_") as out:
        trainers = {}
        for name in methods:
            cfg = _config(name, setting, args, out)
            trainers[name] = Trainer(cfg, RunDirectory.create(out, name), resuming=False)
        rows = {name: Row(name, count_step_flops(t, epoch=2), t.steps_per_epoch) for name, t in trainers.items()}
        for name, trainer in trainers.items():  # warm-up epoch: allocator, kernels, first-use caches
            timed_epoch(trainer, 1, clock=CLOCKS[args.clock])
        for epoch in range(2, args.epochs + 2):
            for name in round_order(list(trainers), round_index=epoch - 2, rounds=args.epochs):
                trainer = trainers[name]
                timed_epoch(trainer, epoch, rows[name], clock=CLOCKS[args.clock])
                print(f"  {setting_name} {name:10s} epoch {epoch}: {rows[name].epochs_s[-1]:.2f} s",
                      file=sys.stderr, flush=True)
        return list(rows.values())


def verdict(method: str, ratio: float, flop_ratio: float) -> tuple[str, bool]:
    kind, bound = TARGETS.get(method, ("flops", 1.1))
    limit = bound if kind == "ratio" else bound * flop_ratio
    label = f"<= {limit:.2f}" if kind == "ratio" else f"<= {bound:g} x FLOP = {limit:.2f}"
    return label, ratio <= limit


def table(setting_name: str, rows: list[Row]) -> str:
    base = next(r for r in rows if r.method == "ce")
    lines = [f"### {setting_name}", "",
             "| method | FLOP ratio | epoch (s) | measured ratio | overhead (ratio / FLOP) | target | met "
             "| fastest-epoch ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        flop_ratio = row.flops / base.flops
        ratio = row.typical_epoch / base.typical_epoch
        label, ok = verdict(row.method, ratio, flop_ratio)
        lines.append(f"| {row.method} | {flop_ratio:.2f} | {row.typical_epoch:.2f} | {ratio:.2f} | "
                     f"{ratio / flop_ratio:.2f} | {label} | {'yes' if ok else 'no'} | "
                     f"{row.fastest / base.fastest:.2f} |")
    spread = statistics.median(max(r.epochs_s) / r.fastest for r in rows)
    lines += ["", f"median slowest/fastest epoch of a method: {spread:.2f} (load on the machine while measuring)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="all", help="comma-separated, or 'all' registered methods")
    parser.add_argument("--settings", default="small48,resnet18_112", help=f"of {', '.join(SETTINGS)}")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per method (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="off", choices=("off", "on", "auto"))
    parser.add_argument("--quick", action="store_true", help="128 faces, 1 timed epoch: a smoke test")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of torch (0: torch's default)")
    parser.add_argument("--clock", default="wall", choices=tuple(CLOCKS),
                        help="wall: elapsed time; cpu: this process's CPU time (with --threads 1, robust to "
                             "other processes on a shared machine)")
    parser.add_argument("--out", help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1
    methods = METHODS.names() if args.methods == "all" else args.methods.split(",")
    methods = ["ce"] + [m for m in methods if m != "ce"]
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures the host's work only: use it with --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, {torch.get_num_threads()} CPU threads, {args.clock} clock", flush=True)
    tables = []
    for setting_name in args.settings.split(","):
        tables.append(table(setting_name, measure(setting_name, methods, args)))
        print(tables[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n\n".join(tables) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
