"""Which signal finds the wrong labels of a FER training set? Measured on the simulator, truth known.

Usage (the README table)::

    .venv/bin/python benchmarks/bench_label_issues.py --out bench/label_issues --method-seeds 0

For every noise setting (``--noise``, default symmetric 20 % and 40 %, asymmetric 30 %,
instance-dependent 30 % and the simulator's crowd vote) and seed (``--seeds``, default 0,1; the
seed draws the noisy labels, the training order and the folds) it trains, on ``--num-train``
simulated faces at ``--image-size`` px with ``--backbone``, fine-tuning for ``--epochs`` epochs a
backbone pretrained with ``ce`` on ``--pretrain-num-train`` clean faces of another simulated
population (simulator seed 100, ``--pretrain-epochs`` epochs; as ``configs/ce_sim_pretrain.yaml``,
smaller):

* ``ce`` on all the noisy labels (its probabilities on its own training images: *in-sample*);
* ``ce`` on ``--folds`` seeded stratified folds, each scoring the fold it did not train on
  (:func:`noisyfer.sweep.crossval.run_crossval`, exactly what ``noisyfer suspects --cv K`` runs):
  *out-of-fold* probabilities;
* each method of ``--methods`` on all the noisy labels, for its own per-sample signal
  (``clean_score`` of its last epoch, see :mod:`noisyfer.analysis.scores`);
* ``ce`` on the cleaned training set: the out-of-fold label issues found by confident learning
  removed (``noisyfer suspects --clean-out``).

Rows of the detection table (mean over seeds): in-sample self-confidence, out-of-fold
self-confidence, out-of-fold confident learning (cleanlab's ``find_label_issues``), each method's
signal. Columns: AUROC of the score for the truly mislabeled samples; the estimated number of issues
over the true number; precision, recall and F1 of the flagged set (confident learning: cleanlab's
issues; a score: its top-k with k = cleanlab's estimated number of issues from the same
probabilities, or from the out-of-fold probabilities for a method's signal); the absolute error of
the estimated noise rate (percentage points). The retraining table gives test accuracy (last epoch)
of ``ce`` on the noisy labels, the best method of ``--methods`` on the noisy labels, and ``ce`` on the
cleaned set.

Resumable: finished runs are read back, unfinished ones resumed. ``--stage train`` trains everything
but the cleaned retraining and writes no table. Writes ``OUT/results.csv`` (one row per setting,
seed and signal) and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_methods import parse_list, parse_noise, run_one  # noqa: E402  (benchmark helpers)

import noisyfer  # noqa: E402
from noisyfer.config import config_from_args  # noqa: E402
from noisyfer.errors import UserError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_NOISE = "symmetric:0.2,symmetric:0.4,asymmetric:0.3,instance:0.3,crowd:0"
DEFAULT_METHODS = "scn,rul,dmue,lrn,ncctfer,elr,ldlva"
#: Per-method settings for short fine-tuning runs (the *_sim.yaml schedules assume 12+ epochs).
SHORT_RUN = {"dmue": ["method.ramp_epoch=1"], "ncctfer": ["method.warmup_epochs=0"],
             "scn": ["method.relabel_epoch=100"]}


def tag(kind: str, rate: float, seed: int) -> str:
    return f"{kind}_s{seed}" if kind == "crowd" else f"{kind}{rate:g}_s{seed}"


def label(kind: str, rate: float) -> str:
    return "crowd vote" if kind == "crowd" else f"{kind} {100 * rate:g} %"


def shared_items(args, kind: str, rate: float, seed: int, pretrained: Path) -> list[str]:
    """``key=value`` settings every training of one (setting, seed) shares."""
    return ["data.name=synthetic", f"data.image_size={args.image_size}", f"data.num_train={args.num_train}",
            f"data.num_test={args.num_test}", f"model.backbone={args.backbone}", f"model.pretrained={pretrained}",
            f"train.epochs={args.epochs}", "train.batch_size=64", "train.optimizer=adam", "train.lr=0.002",
            "train.weight_decay=0.0001", "train.schedule=cosine", "train.warmup_epochs=0",
            f"noise.kind={kind}", f"noise.rate={0.0 if kind == 'crowd' else rate}", f"noise.seed={seed}",
            f"seed={seed}", f"device={args.device}"]


def method_config(method: str, items: list[str], out: Path, name: str, *, recipe: bool = True):
    """``method`` from its ``configs/<method>_sim.yaml`` (its options; ``recipe=False``: none) with ``items``."""
    sim = REPO / "configs" / f"{method}_sim.yaml"
    sim = sim if recipe else Path("-")
    overrides = [f"method.name={method}", *items, *SHORT_RUN.get(method, []), f"out={out}", f"name={name}"]
    return config_from_args(str(sim) if sim.is_file() else None, overrides)


def pretrain(args) -> Path:
    cfg = config_from_args(None, [
        "method=ce", "data.name=synthetic", "data.seed=100", f"data.image_size={args.image_size}",
        f"data.num_train={args.pretrain_num_train}", "data.num_test=500", f"model.backbone={args.backbone}",
        "noise.kind=none", f"train.epochs={args.pretrain_epochs}", "train.batch_size=64", "train.lr=0.002",
        "train.schedule=cosine", "train.warmup_epochs=1", "seed=0", f"out={args.out}", "name=pretrain",
        f"device={args.device}"])
    summary, run_dir = run_one(cfg)
    print(f"pretrained backbone: {run_dir / 'best_model.pt'} (accuracy on its own population "
          f"{100 * summary['accuracy_best']:.1f} %)", flush=True)
    return run_dir / "best_model.pt"


def train_setting(args, kind: str, rate: float, seed: int, pretrained: Path, methods: list[str]) -> dict:
    from noisyfer.sweep.crossval import run_crossval

    out = Path(args.out)
    items = shared_items(args, kind, rate, seed, pretrained)
    runs = {"ce": run_one(method_config("ce", items, out / "runs", f"ce_{tag(kind, rate, seed)}"))[1]}
    cv_dir = out / "cv" / tag(kind, rate, seed)
    counts = run_crossval([str(REPO / "configs" / "ce_sim.yaml"), *items], cv_dir, k=args.folds, fold_seed=seed)
    if counts.get("failed"):
        raise UserError(f"{cv_dir}: {counts['failed']} fold run(s) failed; see {cv_dir / 'logs'}")
    for method in methods:
        runs[method] = run_one(method_config(method, items, out / "runs", f"{method}_{tag(kind, rate, seed)}"))[1]
    return {"items": items, "runs": runs, "cv": cv_dir}


def evaluate_setting(args, kind: str, rate: float, seed: int, trained: dict, methods: list[str]) -> list[dict]:
    from noisyfer.analysis.detection import auroc, detection_scores
    from noisyfer.analysis.label_issues import estimate_label_issues
    from noisyfer.analysis.rundata import RunData
    from noisyfer.analysis.scores import rank_suspects, score_samples
    from noisyfer.report import export_suspects
    from noisyfer.report.analyses import RunAnalyses
    from noisyfer.sweep.crossval import collect_oof

    out = Path(args.out)
    ce_run = RunAnalyses(trained["runs"]["ce"], checkpoint="best", device="cpu")
    given = ce_run.run.given_labels
    noisy = given != ce_run.truth[0]
    true_rate = float(noisy.mean())
    oof = collect_oof(trained["cv"])
    if not np.array_equal(oof.given, given):
        raise UserError(f"{trained['cv']}: folds trained on other labels than {trained['runs']['ce']}")
    rows = []

    def row(signal, suspicion, flagged, estimate=None):
        scored = np.isfinite(suspicion)
        scores = detection_scores(flagged, noisy)
        rows.append({"setting": label(kind, rate), "seed": seed, "signal": signal,
                     "auroc": auroc(suspicion[scored], noisy[scored]), "scored": int(scored.sum()),
                     "estimated_issues": int(flagged.sum()), "true_issues": int(noisy.sum()),
                     "precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                     "noise_rate_true": true_rate,
                     "noise_rate_estimate": None if estimate is None else estimate.noise_rate,
                     "noise_rate_abs_error": None if estimate is None else abs(estimate.noise_rate - true_rate)})

    def top(suspicion, k):
        mask = np.zeros(suspicion.size, dtype=bool)
        if k:
            mask[rank_suspects(suspicion, top=k)] = True
        return mask

    in_probs = ce_run.train_probs  # what `noisyfer suspects RUN` uses (best weights, own training images)
    in_est = estimate_label_issues(labels=given, probs=in_probs)
    in_susp = score_samples("self_confidence", probs=in_probs, given=given)
    row("in-sample self-confidence", in_susp, top(in_susp, in_est.num_issues), in_est)
    oof_est = estimate_label_issues(labels=given, probs=oof.probs)
    oof_susp = score_samples("self_confidence", probs=oof.probs, given=given)
    row("out-of-fold self-confidence", oof_susp, top(oof_susp, oof_est.num_issues), oof_est)
    cl_susp = score_samples("margin", probs=oof.probs, given=given)
    row("out-of-fold confident learning (cleanlab)", cl_susp, oof_est.issues, oof_est)
    for method in methods:
        record = RunData(trained["runs"][method]).sample_record()
        if "clean_score" not in record:
            raise UserError(f"{trained['runs'][method]}: {method} recorded no clean_score")
        susp = score_samples("method", clean_score=record["clean_score"])
        row(f"{method} (own signal)", susp, top(susp, oof_est.num_issues))

    # find, clean, retrain: `noisyfer suspects CV_DIR --clean-out DIR`, then ce on DIR
    clean_dir = out / "clean" / tag(kind, rate, seed)
    if not (clean_dir / "meta.json").is_file():
        export_suspects(trained["cv"], out=trained["cv"] / "suspects.csv", clean_out=clean_dir, clean="remove")
    items = [i for i in trained["items"] if not i.startswith(("data.name=", "data.num_", "noise."))]
    items += ["data.name=noisyfer", f"data.root={clean_dir}", "noise.kind=none"]
    summary, _ = run_one(method_config("ce", items, out / "runs", f"ce-cleaned_{tag(kind, rate, seed)}",
                                         recipe=False))
    accuracy = {"ce": RunData(trained["runs"]["ce"]).summary["accuracy_last"], "ce_cleaned": summary["accuracy_last"]}
    for method in methods:
        accuracy[method] = RunData(trained["runs"][method]).summary["accuracy_last"]
    for r in rows:
        r["accuracy"] = accuracy
    return rows


def mean(values) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else float("nan")


def fmt(value, scale=1.0, digits=3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{scale * value:.{digits}f}"


def tables(rows: list[dict], settings, seeds, methods, args) -> str:
    lines = [f"Label-issue detection on the simulator: {args.num_train} faces, {args.image_size} px, {args.backbone} "
             f"fine-tuned {args.epochs} epochs from a ce backbone pretrained {args.pretrain_epochs} epochs on "
             f"{args.pretrain_num_train} clean faces of another population; {args.folds} folds; mean over seeds "
             f"{','.join(map(str, seeds))}" + (f" (method signals: seeds {args.method_seeds})" if args.method_seeds else "")
             + ".", ""]
    signals = list(dict.fromkeys(r["signal"] for r in rows))
    for kind, rate in settings:
        sub = [r for r in rows if r["setting"] == label(kind, rate)]
        if not sub:
            continue
        lines += [f"**{label(kind, rate)}** (true noise rate {fmt(mean(r['noise_rate_true'] for r in sub), 100, 1)} %)",
                  "", "| signal | AUROC | est. / true issues | precision | recall | F1 | noise-rate error (pp) |",
                  "|---|---|---|---|---|---|---|"]
        for signal in signals:
            rs = [r for r in sub if r["signal"] == signal]
            if not rs:
                continue
            err = mean(r["noise_rate_abs_error"] for r in rs)
            lines.append(f"| {signal} | {fmt(mean(r['auroc'] for r in rs))} | "
                         f"{mean(r['estimated_issues'] for r in rs):.0f} / {mean(r['true_issues'] for r in rs):.0f} | "
                         f"{fmt(mean(r['precision'] for r in rs))} | {fmt(mean(r['recall'] for r in rs))} | "
                         f"{fmt(mean(r['f1'] for r in rs))} | {fmt(err, 100, 1)} |")
        lines.append("")
    lines += ["Clean and retrain: test accuracy (%, last epoch, mean over seeds)", "",
              "| noise | ce, noisy labels | best robust method, noisy labels | ce, cleaned (issues removed) |",
              "|---|---|---|---|"]
    for kind, rate in settings:
        accs = [r["accuracy"] for r in rows if r["setting"] == label(kind, rate)
                and r["signal"].startswith("out-of-fold confident")]
        if not accs:
            continue
        with_methods = [a for a in accs if all(m in a for m in methods)]
        best = max(methods, key=lambda m: mean(a[m] for a in with_methods)) if methods and with_methods else None
        lines.append(f"| {label(kind, rate)} | {fmt(mean(a['ce'] for a in accs), 100, 1)} | "
                     f"{best}: {fmt(mean(a[best] for a in with_methods), 100, 1) if best else 'n/a'} | "
                     f"{fmt(mean(a['ce_cleaned'] for a in accs), 100, 1)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--noise", default=DEFAULT_NOISE, help="KIND:RATE,... (crowd takes no rate: crowd:0)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="methods whose own signal is measured")
    parser.add_argument("--method-seeds", default=None,
                        help="seeds on which the methods' own signals are measured (default: --seeds)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--num-train", type=int, default=1000)
    parser.add_argument("--num-test", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--backbone", default="resnet_tiny")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--pretrain-num-train", type=int, default=6000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stage", choices=("all", "train"), default="all",
                        help="train: every training but the cleaned retraining, no tables")
    args = parser.parse_args(argv)
    try:
        settings = parse_noise(args.noise)
        seeds = parse_list(args.seeds, int, "--seeds")
        methods = [m for m in args.methods.split(",") if m]
        for method in methods:
            noisyfer.METHODS.get(method)
        pretrained = pretrain(args)
        rows = []
        # every setting's ce and folds first, then the methods: a cut-short run still has the core rows
        trained = {}
        method_seeds = seeds if args.method_seeds is None else parse_list(args.method_seeds, int, "--method-seeds")
        for phase_methods in ([], methods):
            for seed in (seeds if not phase_methods else method_seeds):
                for kind, rate in settings:
                    print(f"== {label(kind, rate)}, seed {seed}, methods {phase_methods or '(ce, folds)'}", flush=True)
                    trained[(kind, rate, seed)] = train_setting(args, kind, rate, seed, pretrained, phase_methods)
        if args.stage == "train":
            return 0
        for seed in seeds:
            for kind, rate in settings:
                rows += evaluate_setting(args, kind, rate, seed, trained[(kind, rate, seed)],
                                         methods if seed in method_seeds else [])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    with (out / "results.csv").open("w", newline="") as f:
        fields = [k for k in rows[0] if k != "accuracy"]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    text = tables(rows, settings, seeds, methods, args)
    (out / "results.md").write_text(text + "\n")
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
