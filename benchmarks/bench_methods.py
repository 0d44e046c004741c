"""Accuracy of training methods on the FER simulator under label noise.

Usage::

    .venv/bin/python benchmarks/bench_methods.py --methods ce,scn,scn_c,rul,rul_c \\
        --noise none,symmetric:0.2,symmetric:0.4,asymmetric:0.3 --seeds 0,1,2 --out bench/methods \\
        --pretrain-epochs 12 --set data.image_size=32 --set scn:method.relabel_epoch=5

Each (method, noise setting, seed) is one run of ``noisyfer.train`` on ``data=synthetic`` with
``noise.kind=KIND``, ``noise.rate=RATE`` (``none``: clean labels), ``seed=SEED`` and
``noise.seed=SEED`` (every seed draws its own noisy labels; methods at the same seed see the same
ones). A method starts from ``configs/<method>_sim.yaml`` when that file exists, otherwise from
:data:`DEFAULT_RECIPE`; ``--epochs``, ``--num-train``, ``--num-test`` and ``--set key=value``
override the recipe for every method, ``--set METHOD:key=value`` for one method only.

Pretraining (``--pretrain-epochs N``): the papers fine-tune a backbone pretrained on faces
(MS-Celeb-1M). The simulator's stand-in is a ``ce`` run on a clean, disjoint simulated population
(simulator seed ``--pretrain-data-seed``: other identities, other faces, its own test split) with
the benchmark's image size and backbone; every run then starts from its weights
(``model.pretrained=OUT/pretrain/best_model.pt``, backbone only: each method's heads start fresh).

Runs go to ``OUT/runs/<method>_<kind><rate>_s<seed>``. The benchmark is resumable: a run whose
``summary.json`` says ``finished`` is read back, not retrained; an unfinished one is resumed from its
last checkpoint. A run directory made with another configuration is an error (use another
``--out``). At the end it prints Markdown tables (rows = methods, columns = noise settings, mean ±
std over seeds): test accuracy and balanced accuracy (%), last epoch / best epoch; for methods
that record per-sample label distributions (``ldlva``, ``elr``, ``smec``) the mean
KL(true || learned) of the training distributions at the last epoch against KL(true || one-hot given
label). It writes ``OUT/results.csv`` (one line per run) and ``OUT/results.md`` (the tables).

Numbers on a shared CPU are slow to get but not noisy (runs are deterministic); times are.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import noisyfer
from noisyfer.analysis.fidelity import run_label_distribution_closeness
from noisyfer.config import RunConfig, config_from_args, load_yaml, resolve_config
from noisyfer.engine.provenance import absolute_paths
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
_KINDS = ("none", "symmetric", "asymmetric", "uniform", "instance", "crowd")


def parse_list(text: str, kind: type, flag: str) -> list:
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UserError(f"{flag}: expected a comma-separated list of {kind.__name__}s, got {text!r}") from None
    if not values:
        raise UserError(f"{flag}: empty list")
    return values


def parse_noise(text: str) -> list[tuple[str, float]]:
    """``none,symmetric:0.2,asymmetric:0.3`` -> [("none", 0.0), ("symmetric", 0.2), ...]."""
    settings = []
    for item in parse_list(text, str, "--noise"):
        kind, _, rate = item.strip().partition(":")
        if kind not in _KINDS:
            raise UserError(f"--noise: unknown kind {kind!r} in {item!r}; expected one of {', '.join(_KINDS)}")
        if kind == "none":
            if rate and float(rate) != 0:
                raise UserError(f"--noise: 'none' takes no rate, got {item!r}")
            settings.append(("none", 0.0))
            continue
        try:
            value = float(rate)
        except ValueError:
            raise UserError(f"--noise: expected KIND:RATE such as symmetric:0.4, got {item!r}") from None
        settings.append((kind, value))
    return settings


def setting_label(kind: str, rate: float) -> str:
    return "clean" if kind == "none" else f"{kind[:4]}. {100 * rate:g} %"


def run_name(method: str, kind: str, rate: float, seed: int) -> str:
    return f"{method}_clean_s{seed}" if kind == "none" else f"{method}_{kind}{rate:g}_s{seed}"


def split_overrides(sets: list[str], method: str) -> list[str]:
    """The ``--set`` entries for ``method``: global ones and ``method:key=value`` ones."""
    chosen = []
    for entry in sets:
        head, sep, rest = entry.partition(":")
        if sep and "=" not in head:
            if head == method:
                chosen.append(rest)
        else:
            chosen.append(entry)
    return chosen


def build_config(method: str, kind: str, rate: float, seed: int, args: argparse.Namespace,
                 pretrained: Path | None) -> RunConfig:
    sim = REPO / "configs" / f"{method}_sim.yaml"
    overrides = [] if sim.is_file() else list(DEFAULT_RECIPE)
    overrides += [f"method.name={method}", "data.name=synthetic", f"noise.kind={kind}", f"noise.rate={rate}",
                  f"noise.seed={seed}", f"seed={seed}", f"out={Path(args.out) / 'runs'}",
                  f"name={run_name(method, kind, rate, seed)}", f"device={args.device}"]
    overrides += common_overrides(args) + split_overrides(args.set, method)
    if pretrained is not None:
        overrides.append(f"model.pretrained={pretrained}")
    return config_from_args(str(sim) if sim.is_file() else None, overrides)


def common_overrides(args: argparse.Namespace) -> list[str]:
    overrides = []
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.num_train is not None:
        overrides.append(f"data.num_train={args.num_train}")
    if args.num_test is not None:
        overrides.append(f"data.num_test={args.num_test}")
    return overrides


def pretrain_config(args: argparse.Namespace) -> RunConfig:
    """``ce`` on a clean simulated population disjoint from the benchmark's (another simulator seed)."""
    shared = [entry for entry in split_overrides(args.set, "ce")
              if entry.split("=", 1)[0] in ("data.image_size", "model.backbone", "train.batch_size")]
    overrides = shared + [
        "data.name=synthetic", f"data.seed={args.pretrain_data_seed}", f"data.num_train={args.pretrain_num_train}",
        "data.num_test=1000", "noise.kind=none", "noise.rate=0", f"train.epochs={args.pretrain_epochs}",
        "seed=0", f"out={args.out}", "name=pretrain", f"device={args.device}",
    ]
    return config_from_args(str(REPO / "configs" / "ce_sim.yaml"), overrides)


def _comparable(cfg: RunConfig) -> dict:
    """The configuration as a run stores it (paths absolute, every key resolved), less the ignored keys."""
    return {k: v for k, v in absolute_paths(cfg)[0].to_dict().items() if k not in _IGNORED_KEYS}


def run_one(cfg: RunConfig, *, train: bool = True) -> tuple[dict | None, Path]:
    """Train, resume or read back the run of ``cfg``; returns its summary (``None`` when it has not
    finished and ``train`` is false) and directory."""
    path = Path(cfg.out) / cfg.name
    if not path.exists():
        return (noisyfer.train(cfg).summary if train else None), path
    stored_file = path / "config.yaml"
    if not stored_file.is_file():
        raise UserError(f"{path} exists but is not a run directory (no config.yaml); use another --out")
    stored = resolve_config({**load_yaml(stored_file), "resume": None})
    if _comparable(stored) != _comparable(cfg):
        raise UserError(f"{path} was made with another configuration (compare its config.yaml); use another --out")
    summary_file = path / "summary.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        if summary.get("status") == "finished":
            print(f"done already: {path}", flush=True)
            return summary, path
    if not train:
        return None, path
    print(f"resuming: {path}", flush=True)
    return noisyfer.resume(path).summary, path


def mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{scale * mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def markdown_table(rows: list[dict], methods: list[str], settings: list[tuple[str, float]],
                   cell) -> str:
    header = "| method | " + " | ".join(setting_label(*s) for s in settings) + " |"
    lines = [header, "|---" * (len(settings) + 1) + "|"]
    for method in methods:
        cells = [cell([r for r in rows if r["method"] == method and (r["kind"], r["rate"]) == s]) for s in settings]
        if any(c != "-" for c in cells):
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(rows: list[dict], methods: list[str], settings: list[tuple[str, float]], seeds: list[int],
           pretrained: bool) -> str:
    start = "backbone pretrained on a clean disjoint simulated population" if pretrained else "from scratch"
    parts = [
        f"Test accuracy (%) on the simulator, last epoch / best epoch, mean ± std over seeds {seeds}; {start}.",
        markdown_table(rows, methods, settings, lambda runs: f"{mean_std([r['accuracy_last'] for r in runs])} / "
                       f"{mean_std([r['accuracy_best'] for r in runs])}" if runs else "-"),
        "Balanced test accuracy (%), last epoch / best value.",
        markdown_table(rows, methods, settings, lambda runs: f"{mean_std([r['balanced_last'] for r in runs])} / "
                       f"{mean_std([r['balanced_best'] for r in runs])}" if runs else "-"),
    ]
    with_kl = [r for r in rows if r.get("kl_learned") is not None]
    if with_kl:
        parts += [
            "Training label distributions at the last epoch: mean KL(true || learned) / KL(true || one-hot given "
            "label), nats (lower is closer to the simulator's true distributions).",
            markdown_table(with_kl, methods, settings,
                           lambda runs: f"{mean_std([r['kl_learned'] for r in runs], 1, 2)} / "
                           f"{mean_std([r['kl_one_hot'] for r in runs], 1, 2)}" if runs else "-"),
        ]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", required=True, help="comma-separated registered method names")
    parser.add_argument("--noise", default="none,symmetric:0.2,symmetric:0.4",
                        help="comma-separated noise settings KIND:RATE ('none' for clean labels)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (training and noise)")
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs for every method")
    parser.add_argument("--num-train", type=int, default=None, help="data.num_train for every method")
    parser.add_argument("--num-test", type=int, default=None, help="data.num_test for every method")
    parser.add_argument("--set", action="append", default=[], metavar="[METHOD:]KEY=VALUE",
                        help="extra override for every run, or for METHOD's runs only (repeatable)")
    parser.add_argument("--pretrain-epochs", type=int, default=0,
                        help="pretrain the backbone with ce on a clean disjoint population first (0: from scratch)")
    parser.add_argument("--pretrain-num-train", type=int, default=8000)
    parser.add_argument("--pretrain-data-seed", type=int, default=100, help="simulator seed of the pretraining data")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing: tables of the finished runs only (others are shown as '-')")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="benchmark folder (pretrain/, runs/, results.csv, results.md)")
    args = parser.parse_args(argv)
    try:
        methods = parse_list(args.methods, str, "--methods")
        settings = parse_noise(args.noise)
        seeds = parse_list(args.seeds, int, "--seeds")
        for method in methods:
            noisyfer.METHODS.get(method)  # unknown names fail before any training
        pretrained = None
        if args.pretrain_epochs > 0:
            pre_cfg = pretrain_config(args)
            pretrained = Path(pre_cfg.out) / pre_cfg.name / "best_model.pt"
            if not args.no_train:
                print(f"pretraining: ce on {args.pretrain_num_train} clean faces of simulator seed "
                      f"{args.pretrain_data_seed}", flush=True)
                summary, _ = run_one(pre_cfg)
                print(f"pretrained backbone: {pretrained} (test accuracy on its own population "
                      f"{100 * summary['accuracy_best']:.1f} %)", flush=True)
        configs = [(m, k, r, s, build_config(m, k, r, s, args, pretrained))
                   for m in methods for k, r in settings for s in seeds]
        data = {m: (cfg.data.image_size, cfg.data_options) for m, _, _, _, cfg in configs}
        if len(set(map(repr, data.values()))) > 1:
            print("warning: methods train on different simulator settings: "
                  + "; ".join(f"{m}: size {v[0]}, {v[1]}" for m, v in data.items()), file=sys.stderr)
        rows = []
        for index, (method, kind, rate, seed, cfg) in enumerate(configs, 1):
            print(f"[{index}/{len(configs)}] {method} {setting_label(kind, rate)} seed {seed}", flush=True)
            summary, run_dir = run_one(cfg, train=not args.no_train)
            if summary is None:
                print(f"not finished, left out: {run_dir}", flush=True)
                continue
            rows.append({"method": method, "kind": kind, "rate": rate, "seed": seed,
                         "accuracy_last": summary["accuracy_last"], "accuracy_best": summary["accuracy_best"],
                         "balanced_last": summary["balanced_accuracy_last"],
                         "balanced_best": summary["balanced_accuracy_best"],
                         "best_epoch": summary.get("best_epoch"), "epochs": summary.get("epochs_done"),
                         **{k: None for k in ("kl_learned", "kl_one_hot")},
                         **run_label_distribution_closeness(run_dir, epoch=cfg.train.epochs),
                         "run_dir": str(run_dir)})
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    text = tables(rows, methods, settings, seeds, pretrained is not None)
    (out / "results.md").write_text(text + "\n")
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
