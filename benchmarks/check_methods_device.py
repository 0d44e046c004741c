"""Every registered method on one device, mixed precision against fp32; and run-to-run determinism.

Usage::

    .venv/bin/python benchmarks/check_methods_device.py --device cuda            # on a GPU (part of gpu_check.sh)
    .venv/bin/python benchmarks/check_methods_device.py --device cpu --quick     # a smoke test here

For each method: two epochs with ``train.amp=on`` (bf16 autocast where the device supports it) and
two with ``train.amp=off`` (fp32), same seed and data. It checks and prints

- every training loss finite, in both precisions;
- test accuracy of the two within ``--tolerance`` (absolute, default 0.05: bf16 rounds differently,
  so the two runs drift apart within two epochs, but not by more than a few points);
- no CPU fallback: every parameter, buffer and per-sample state tensor of the method on the device;
- host-device synchronisations inside the training epochs (CUDA only), counted with
  ``torch.cuda.set_sync_debug_mode("warn")``: the engine checks the loss for NaN every
  ``train.log_every`` steps (one synchronisation each), so a method adds none when its count per step
  is at most 1 / log_every. Where a method synchronises, the first source lines are printed.

Then ``ce`` twice with ``train.deterministic=true``: the metrics of the two runs must be identical.
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import torch

import noisyfer
from noisyfer.engine.rundir import RunDirectory
from noisyfer.engine.trainer import Trainer
from noisyfer.registry import METHODS

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead import STEADY_STATE  # noqa: E402


def _overrides(method: str, args, *, amp: str, out: str) -> list[str]:
    num_train, num_test, size, backbone = (128, 64, 32, "resnet_tiny") if args.quick else (1000, 500, 64, "resnet18")
    return [f"method={method}", "data=synthetic", f"data.num_train={num_train}", f"data.num_test={num_test}",
            f"data.image_size={size}", f"model.backbone={backbone}", "train.sampler=balanced",
            f"train.epochs={args.epochs}", f"train.amp=\"{amp}\"", f"device={args.device}", f"out={out}",
            "noise.kind=symmetric", "noise.rate=0.2", "seed=0", *STEADY_STATE.get(method, ())]


def _off_device(method: torch.nn.Module, device: torch.device) -> list[str]:
    tensors = list(method.named_parameters()) + list(method.named_buffers())
    return [name for name, t in tensors if t.device.type != device.type]


def run_method(method: str, args, *, amp: str, out: str) -> dict:
    cfg = noisyfer.config_from_args(None, _overrides(method, args, amp=amp, out=out))
    trainer = Trainer(cfg, RunDirectory.create(out, f"{method}_{amp}"), resuming=False)
    syncs: list[Counter] = []
    steps = 0
    cuda = trainer.device.type == "cuda"
    epoch_fn = trainer._train_epoch

    def counted_epoch(epoch: int, *args):
        nonlocal steps
        if not cuda:
            return epoch_fn(epoch, *args)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                logs = epoch_fn(epoch, *args)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        syncs.append(Counter(f"{Path(w.filename).name}:{w.lineno}" for w in caught
                             if "synchroniz" in str(w.message)))
        steps += trainer.steps_per_epoch
        return logs

    trainer._train_epoch = counted_epoch
    started = time.perf_counter()
    result = trainer.fit()
    history = trainer.run.read_metrics()
    total = sum(syncs, Counter())
    return {
        "losses_finite": all(math.isfinite(r["train_loss"]) for r in history),
        "accuracy": result.summary["accuracy_last"],
        "off_device": _off_device(trainer.method, trainer.device),
        "syncs_per_step": (sum(total.values()) / steps) if cuda and steps else None,
        "sync_sources": total.most_common(3),
        "log_every": cfg.train.log_every,
        "seconds": round(time.perf_counter() - started, 1),
    }


def check_methods(args, out: str) -> bool:
    ok = True
    names = METHODS.names() if args.methods == "all" else args.methods.split(",")
    print("| method | loss finite (amp / fp32) | accuracy amp | accuracy fp32 | |difference| | off-device tensors "
          "| syncs per step | time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        amp = run_method(name, args, amp="on", out=out)
        fp32 = run_method(name, args, amp="off", out=out)
        gap = abs(amp["accuracy"] - fp32["accuracy"])
        off = amp["off_device"] + fp32["off_device"]
        sync_limit = 1.0 / amp["log_every"] + 1e-9
        syncs = amp["syncs_per_step"]
        passed = (amp["losses_finite"] and fp32["losses_finite"] and gap <= args.tolerance and not off
                  and (syncs is None or syncs <= sync_limit))
        ok &= passed
        sync_text = "n/a (not CUDA)" if syncs is None else f"{syncs:.3f}"
        if syncs is not None and syncs > sync_limit:
            sync_text += " at " + ", ".join(f"{where} x{n}" for where, n in amp["sync_sources"])
        print(f"| {name} | {amp['losses_finite']} / {fp32['losses_finite']} | {amp['accuracy']:.4f} | "
              f"{fp32['accuracy']:.4f} | {gap:.4f}{'' if gap <= args.tolerance else ' FAIL'} | "
              f"{', '.join(off[:3]) or 'none'} | {sync_text} | {amp['seconds'] + fp32['seconds']:.0f} |", flush=True)
    return ok


def check_determinism(args, out: str) -> bool:
    metrics = []
    for attempt in (1, 2):
        overrides = _overrides("ce", args, amp="on", out=out) + ["train.deterministic=true"]
        cfg = noisyfer.config_from_args(None, overrides)
        run = RunDirectory.create(out, f"determinism_{attempt}")
        Trainer(cfg, run, resuming=False).fit()
        metrics.append([{k: v for k, v in r.items() if not k.startswith("time")} for r in run.read_metrics()])
    same = json.dumps(metrics[0], sort_keys=True) == json.dumps(metrics[1], sort_keys=True)
    last = metrics[0][-1]
    print(f"\ndeterminism (ce, train.deterministic=true, amp on, {args.epochs} epochs, twice): "
          f"{'identical metrics' if same else 'METRICS DIFFER'} (test accuracy {last['test_accuracy']:.4f}, "
          f"loss {last['train_loss']:.6f})")
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.05, help="|accuracy amp - accuracy fp32| allowed")
    parser.add_argument("--quick", action="store_true", help="128 tiny faces, resnet_tiny: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.tolerance = max(args.tolerance, 0.25)  # 64 test faces after 2 tiny epochs: one face is 1.6 points
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") and torch.cuda.is_available() else args.device
    print(f"device: {name}; torch {torch.__version__}; {args.epochs} epochs per run\n")
    with tempfile.TemporaryDirectory(prefix="noisyfer_device_check_") as out:
        ok = check_methods(args, out)
        ok &= check_determinism(args, out)
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
