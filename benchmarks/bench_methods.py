"""Accuracy of training methods on the FER simulator under symmetric label noise.

Usage::

    .venv/bin/python benchmarks/bench_methods.py --methods ce,scn,scn_c,rul,rul_c --rates 0,0.2,0.4 \\
        --seeds 0,1,2 --epochs 12 --num-train 6000 --out bench/methods

Each (method, rate, seed) is one run of ``noisyfer.train`` on ``data=synthetic`` with
``noise.kind=symmetric`` (``none`` at rate 0), ``noise.rate=RATE``, ``seed=SEED`` and
``noise.seed=SEED`` (every seed draws its own noisy labels; methods at the same seed see the same
ones). A method starts from ``configs/<method>_sim.yaml`` when that file exists, otherwise from
:data:`DEFAULT_RECIPE`; ``--epochs``, ``--num-train``, ``--num-test`` and ``--set key=value`` override
the recipe for every method.

Runs go to ``OUT/runs/<method>_r<rate>_s<seed>``. The benchmark is resumable: a run whose
``summary.json`` says ``finished`` is read back, not retrained; an unfinished one is resumed from its
last checkpoint. A run directory made with another configuration is an error (use another
``--out``). At the end it prints a Markdown table of last-epoch / best-epoch test accuracy (%),
mean +- std over seeds, rows = methods and columns = noise rates, and writes ``OUT/results.csv`` (one
line per run) and ``OUT/results.md`` (the table).

Numbers on a shared CPU are slow to get but not noisy (runs are deterministic); times are.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import yaml

import noisyfer
from noisyfer.config import RunConfig, config_from_args
from noisyfer.errors import UserError

REPO = Path(__file__).resolve().parents[1]

#: Recipe of a method without ``configs/<method>_sim.yaml`` (the CPU-sized simulator setting).
DEFAULT_RECIPE = [
    "data.name=synthetic", "data.image_size=48", "data.num_train=6000", "data.num_test=1500",
    "model.backbone=resnet_small", "train.epochs=12", "train.batch_size=64", "train.optimizer=adam",
    "train.lr=0.002", "train.weight_decay=0.0001", "train.schedule=cosine", "train.warmup_epochs=1",
]

#: Keys that may differ between a stored run and the requested one.
_IGNORED_KEYS = ("out", "name", "resume", "device")


def parse_list(text: str, kind: type, flag: str) -> list:
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UserError(f"{flag}: expected a comma-separated list of {kind.__name__}s, got {text!r}") from None
    if not values:
        raise UserError(f"{flag}: empty list")
    return values


def run_name(method: str, rate: float, seed: int) -> str:
    return f"{method}_r{rate:g}_s{seed}"


def build_config(method: str, rate: float, seed: int, args: argparse.Namespace) -> RunConfig:
    sim = REPO / "configs" / f"{method}_sim.yaml"
    overrides = [] if sim.is_file() else list(DEFAULT_RECIPE)
    overrides += [f"method.name={method}", "data.name=synthetic",
                  f"noise.kind={'none' if rate == 0 else 'symmetric'}", f"noise.rate={rate}",
                  f"noise.seed={seed}", f"seed={seed}", f"out={Path(args.out) / 'runs'}",
                  f"name={run_name(method, rate, seed)}", f"device={args.device}"]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.num_train is not None:
        overrides.append(f"data.num_train={args.num_train}")
    if args.num_test is not None:
        overrides.append(f"data.num_test={args.num_test}")
    overrides += args.set
    return config_from_args(str(sim) if sim.is_file() else None, overrides)


def _comparable(tree: dict) -> dict:
    return {k: v for k, v in tree.items() if k not in _IGNORED_KEYS}


def run_one(cfg: RunConfig) -> dict:
    """Train, resume or read back the run of ``cfg``; returns its summary."""
    path = Path(cfg.out) / cfg.name
    if not path.exists():
        return noisyfer.train(cfg).summary
    stored_file = path / "config.yaml"
    if not stored_file.is_file():
        raise UserError(f"{path} exists but is not a run directory (no config.yaml); use another --out")
    stored = yaml.safe_load(stored_file.read_text())
    if _comparable(stored) != _comparable(yaml.safe_load(cfg.to_yaml())):
        raise UserError(f"{path} was made with another configuration (compare its config.yaml); use another --out")
    summary_file = path / "summary.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        if summary.get("status") == "finished":
            print(f"done already: {path}", flush=True)
            return summary
    print(f"resuming: {path}", flush=True)
    return noisyfer.resume(path).summary


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{100 * mean:.1f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown_table(rows: list[dict], methods: list[str], rates: list[float]) -> str:
    header = "| method | " + " | ".join(f"{100 * r:g} % noise" for r in rates) + " |"
    lines = [header, "|---" * (len(rates) + 1) + "|"]
    for method in methods:
        cells = []
        for rate in rates:
            runs = [r for r in rows if r["method"] == method and r["rate"] == rate]
            cells.append(f"{mean_std([r['accuracy_last'] for r in runs])} / "
                         f"{mean_std([r['accuracy_best'] for r in runs])}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", required=True, help="comma-separated registered method names")
    parser.add_argument("--rates", default="0,0.2,0.4", help="comma-separated symmetric noise rates")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (training and noise)")
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs for every method")
    parser.add_argument("--num-train", type=int, default=None, help="data.num_train for every method")
    parser.add_argument("--num-test", type=int, default=None, help="data.num_test for every method")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for every run (repeatable)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="benchmark folder (runs/, results.csv, results.md)")
    args = parser.parse_args(argv)
    try:
        methods = parse_list(args.methods, str, "--methods")
        rates = parse_list(args.rates, float, "--rates")
        seeds = parse_list(args.seeds, int, "--seeds")
        for method in methods:
            noisyfer.METHODS.get(method)  # unknown names fail before any training
        configs = [(m, r, s, build_config(m, r, s, args)) for m in methods for r in rates for s in seeds]
        data = {m: (cfg.data.image_size, cfg.data_options) for m, _, _, cfg in configs}
        if len(set(map(repr, data.values()))) > 1:
            print("warning: methods train on different simulator settings: "
                  + "; ".join(f"{m}: size {v[0]}, {v[1]}" for m, v in data.items()), file=sys.stderr)
        rows = []
        for index, (method, rate, seed, cfg) in enumerate(configs, 1):
            print(f"[{index}/{len(configs)}] {method} rate {rate:g} seed {seed}", flush=True)
            summary = run_one(cfg)
            rows.append({"method": method, "rate": rate, "seed": seed,
                         "accuracy_last": summary["accuracy_last"], "accuracy_best": summary["accuracy_best"],
                         "best_epoch": summary.get("best_epoch"), "epochs": summary.get("epochs_done"),
                         "run_dir": str(Path(cfg.out) / cfg.name)})
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows, methods, rates)
    note = (f"Test accuracy (%) on the simulator, last epoch / best epoch, mean ± std over seeds {seeds}; "
            f"symmetric noise.")
    (out / "results.md").write_text(note + "\n\n" + table + "\n")
    print("\n" + note + "\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
