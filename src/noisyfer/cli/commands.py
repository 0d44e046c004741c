"""Implementations of the ``noisyfer`` subcommands."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ..errors import UserError
from .tables import markdown_table, per_class_table, summary_table


#: ``SynthConfig`` fields as ``noisyfer synth`` options (for error messages).
SYNTH_OPTIONS = {"num_train": "--num-train", "num_test": "--num-test", "image_size": "--size", "seed": "--seed",
                 "num_classes": "--classes", "ambiguity": "--ambiguity", "class_counts": "--class-counts"}


def synth(args) -> int:
    from ..data.format import check_dataset_target, load_split
    from ..data.synthetic import SynthConfig, generate, generate_to, write_preview
    from ..data.synthetic.config import SynthConfigError

    if args.out and args.num_test < 1:
        raise UserError(f"--num-test: expected at least 1 for a dataset (training evaluates on its test split), "
                        f"got {args.num_test}")
    if args.workers < 0:
        raise UserError(f"--workers: expected 0 (one per core) or more, got {args.workers}")
    try:
        config = SynthConfig(num_train=args.num_train, num_test=args.num_test, image_size=args.size,
                             seed=args.seed, num_classes=args.classes, ambiguity=args.ambiguity,
                             class_counts=args.class_counts)
    except SynthConfigError as exc:
        raise exc.renamed(SYNTH_OPTIONS) from None
    if args.out:
        check_dataset_target(Path(args.out).expanduser(), overwrite=args.force, flag="--force")
        root = generate_to(config, args.out, workers=args.workers, overwrite=args.force)
        train = load_split(root, "train")
        print(f"wrote {len(train)} train + {config.num_test} test images of {args.size}x{args.size} to {root}")
        if args.preview is not None:
            path = write_preview(train, args.preview or root / "preview.png")
            print(f"preview: {path}")
        return 0
    if args.preview is None:
        raise UserError("synth: give --out DIR to write a dataset, or --preview to only draw a preview grid")
    small = SynthConfig(**{**config.__dict__, "num_train": min(config.num_train, 800), "num_test": 0})
    train = generate(small, workers=args.workers)["train"]
    path = write_preview(train, args.preview or "synth_preview.png")
    print(f"preview: {path}")
    return 0


def noise(args) -> int:
    from ..data.format import load_split
    from ..noise import noise_from_dataset, save_noisy_labels

    if not Path(args.data).is_dir():
        raise UserError(f"--data: directory not found: {args.data}")
    train = load_split(args.data, "train")
    pairs = None
    if args.pairs:
        try:
            pairs = json.loads(args.pairs)
        except json.JSONDecodeError as exc:
            raise UserError(f"--pairs: invalid JSON ({exc})") from None
    if args.probs and not Path(args.probs).is_file():
        raise UserError(f"--probs: file not found: {args.probs}")
    try:
        result = noise_from_dataset(train, kind=args.kind, rate=args.rate, seed=args.seed, exact=args.exact,
                                    pairs=pairs, probs=args.probs)
    except UserError as exc:  # the protocols name their training keys (noise.rate); here they are options
        raise type(exc)(re.sub(r"\bnoise\.(rate|kind|seed|exact|pairs|probs)\b", r"--\1", str(exc))) from None
    save_noisy_labels(result, args.out)
    print(f"{args.kind} noise, rate {args.rate:g}, seed {args.seed}: {int(result.flipped.sum())} of "
          f"{len(result.labels)} labels changed (realized rate {result.realized_rate:.4f})")
    header = ["given \\ noisy", *train.class_names]
    rows = [[name, *[round(float(v), 3) for v in row]] for name, row in zip(train.class_names, result.transition)]
    print(markdown_table(header, rows))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.json')}")
    return 0


def _split_items(items: list[str]) -> tuple[str | None, list[str]]:
    config_file, overrides = None, []
    for i, item in enumerate(items):
        if "=" not in item and i == 0:
            config_file = item
        elif "=" not in item:
            raise UserError(f"expected key=value, got '{item}' (only the first argument may be a config file)")
        else:
            overrides.append(item)
    return config_file, overrides


def _print_result(result) -> None:
    summary = result.summary
    print(summary_table(summary))
    print()
    print(per_class_table(summary["class_names"], summary.get("per_class_accuracy_last", [])))
    print()
    print(result.run_dir)


def train(args) -> int:
    from ..config import config_from_args
    from ..engine import resume, train as run_training
    from ..engine.distributed import is_main

    if args.nproc != 1 and not args.print_config:
        return _launch_ranks(args)
    config_file, overrides = _split_items(args.items)
    if args.out:
        if any(o.split("=", 1)[0].strip() == "out" for o in overrides):
            raise UserError("give the output folder once: --out DIR or out=DIR")
        overrides.append(f"out={args.out}")
    resume_dir = next((o.split("=", 1)[1] for o in overrides if o.startswith("resume=")), None)
    if resume_dir:
        if config_file:
            raise UserError("resume=RUN_DIR continues a run with its own config.yaml; do not give a config file")
        if args.print_config:
            raise UserError("--print-config: a resumed run's configuration is RUN_DIR/config.yaml")
        result = resume(resume_dir, overrides)
    else:
        cfg = config_from_args(config_file, overrides)
        if args.print_config:
            print(cfg.to_yaml(), end="")
            return 0
        result = run_training(cfg)
    if is_main():  # under torchrun, rank 0 prints
        _print_result(result)
    return 0


def _launch_ranks(args) -> int:
    """``train --nproc N``: the same command under ``torchrun --standalone`` with N processes."""
    import subprocess

    from ..engine.distributed import launched_ranks

    if args.nproc < 1:
        raise UserError(f"--nproc: expected a number of processes >= 1, got {args.nproc}")
    if launched_ranks() > 1:
        raise UserError("--nproc: this command already runs under torchrun (WORLD_SIZE is set); drop --nproc")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "noisyfer", "train", *args.items, *(["--out", args.out] if args.out else [])]
    return subprocess.call(command)


def evaluate(args) -> int:
    from ..engine.evaluation import evaluate_run

    settings = list(args.settings)
    if args.data_root:
        settings.append(f"data.root={args.data_root}")
    report, out_path = evaluate_run(args.run_dir, checkpoint=args.checkpoint, split=args.split, device=args.device,
                                    allow_data_change=args.allow_data_change, data=args.data, data_settings=settings)
    rows = [("accuracy", report["accuracy"]), ("balanced accuracy", report["balanced_accuracy"])]
    for key, label in (("accuracy_vs_training_labels", "accuracy against the run's training labels (noisy)"),
                       ("accuracy_vs_true_labels", "accuracy against the true labels (simulator)")):
        if key in report:
            rows.append((label, report[key]))
    rows += [("samples", report["num_samples"]), ("checkpoint", report["checkpoint"])]
    print(f"{report['split']} split, scored against {report['scored_against']}")
    print(markdown_table(("metric", "value"), rows))
    print()
    print(per_class_table(report["class_names"], report["per_class_accuracy"]))
    print(f"\nwrote {out_path}")
    return 0


def list_components(args) -> int:
    from .describe import describe_options, describe_section, is_section

    if args.configs:
        from ..config import shipped_configs

        for name, path in shipped_configs().items():
            first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
            print(f"  {name:<22} {first}")
        return 0
    if args.name and is_section(args.name):
        print(f"{args.name} section:")
        print(describe_section(args.name))
        return 0
    from ..registry import BACKBONES, DATASETS, METHODS

    registries = (("method", METHODS), ("backbone", BACKBONES), ("dataset", DATASETS))
    if args.name:
        matches = [(kind, registry.get(args.name)) for kind, registry in registries if args.name in registry]
        if not matches:
            METHODS.get(args.name)  # the unknown-name error, with its close-match hint
        for kind, entry in matches:
            prefix = {"method": "method.", "dataset": "data.", "backbone": "model.options."}[kind]
            print(f"{kind} {entry.name}: {entry.summary}")
            print(describe_options(entry.options, prefix=prefix))
        return 0
    for kind, registry in registries:
        print(f"{kind}s:")
        for entry in registry:
            print(f"  {entry.name:<14} {entry.summary}")
            if args.options and kind == "method":
                print(describe_options(entry.options, prefix="method.", indent=4))
    print("\noptions of one: noisyfer list NAME (e.g. noisyfer list scn, noisyfer list train)")
    return 0


DEMO_OVERRIDES = [
    "method=ce", "data=synthetic", "data.image_size=48", "data.num_train=6000", "data.num_test=1500",
    "noise.kind=symmetric", "noise.rate=0.3", "noise.seed=0", "model.backbone=resnet_small",
    "train.epochs=12", "train.batch_size=64", "train.lr=0.002", "train.schedule=cosine", "train.warmup_epochs=1",
    "seed=0",
]


def demo(args) -> int:
    from ..config import config_from_args
    from ..engine import train as run_training

    overrides = DEMO_OVERRIDES + [f"out={args.out}", f"device={args.device}"]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    cfg = config_from_args(None, overrides)
    print("noisyfer demo: cross-entropy on simulated faces with 30% symmetric label noise "
          f"({cfg.data_options.num_train} training images, {cfg.train.epochs} epochs, {cfg.model.backbone})",
          file=sys.stderr)
    result = run_training(cfg)
    _print_result(result)
    return 0
