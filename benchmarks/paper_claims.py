"""Each seed paper's central claim on the FER simulator, read from the shipped sweeps (issue 14).

Every number comes from finished run directories of these sweeps, all in the memorization regime of
``configs/sweeps/sim_memorization.yaml`` (read its comments), 3 seeds unless a table says ``n``:

* the results table itself (``sim_memorization.yaml``, 20 % and 40 % symmetric noise) and its 30 %
  asymmetric companion (``sim_memorization_asym.yaml``);
* the second simulated population (``sim_memorization_pop2.yaml``: simulator seed 3, 24 px, ambiguity 0.45);
* the ablations in :data:`ABLATIONS`: the same sweep narrowed to one method at 40 % with one option
  changed (the "before issue 14" settings and the papers' own ablations), each in its own directory;
* SMEC at 48 px (:data:`SMEC_48`), where the drift of issue 14 was seen.

::

    .venv/bin/python benchmarks/paper_claims.py --run --jobs 2   # train what is missing (resumable; hours on a CPU)
    .venv/bin/python benchmarks/paper_claims.py                  # the claim tables, from the finished runs

The main sweeps need their pretrained stand-ins first (``noisyfer train configs/ce_sim_pretrain.yaml`` and
``configs/ce_sim_pretrain_24.yaml``); ``--run`` trains them when missing. Cells are mean +- sample std
in %, last epoch / best epoch, over the finished seeds (``n`` says how many when fewer than 3).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from noisyfer.analysis.relabel import relabel_report
from noisyfer.config import load_yaml, resolve_config
from noisyfer.data.datasets import create_dataset
from noisyfer.errors import UserError
from noisyfer.methods.label_distribution import compare_label_distributions
from noisyfer.noise import load_noisy_labels
from noisyfer.sweep.aggregate import mean_std
from noisyfer.sweep.results import collect_sweep

MAIN = "configs/sweeps/sim_memorization.yaml"
PRETRAINS = {"runs/sim_pretrain/best_model.pt": "configs/ce_sim_pretrain.yaml",
             "runs/sim_pretrain_24/best_model.pt": "configs/ce_sim_pretrain_24.yaml"}
#: Sweep directory -> the command-line arguments of ``noisyfer sweep`` that make it.
SWEEPS = {
    "sweeps/sim_memorization": [MAIN, "noise.rate=0.4,0.2"],
    "sweeps/sim_memorization_asym": ["configs/sweeps/sim_memorization_asym.yaml"],
    "sweeps/sim_memorization_pop2": ["configs/sweeps/sim_memorization_pop2.yaml"],
}
#: Ablation name -> (method, overrides): ``sim_memorization.yaml`` narrowed to that method at 40 %.
ABLATIONS = {
    "lrn_cld_off": ("lrn", ["method.cld_weight=0"]),
    "lrn_het_off": ("lrn", ["method.heteroscedastic=false"]),
    "lrn_both_off": ("lrn", ["method.heteroscedastic=false", "method.cld_weight=0"]),
    "lrn_centers_learned": ("lrn", ["method.centers=learned"]),
    "ncctfer_pc": ("ncctfer", ["method.variant=pc"]),
    "proximity_bias": ("scn_c,rul_c", ["method.classifier_bias=true"]),
    "rul_c_aux_off": ("rul_c", ["method.aux_center=false"]),
    "smec_bn_all": ("smec", ["method.bn_statistics=all"]),
    "ldlva_true_va": ("ldlva", ["method.va_columns=[valence,arousal]"]),
    "ldlva_legacy_va": ("ldlva", ["data.pseudo_va_error=legacy"]),
}
SMEC_48_SETTING = ["noise.rate=0.4", "seed=0", "data.seed=3", "data.image_size=48"]
#: SMEC at 48 px on another population (seed 0): directory -> extra arguments.
SMEC_48 = {"sweeps/smec48": ["method=ce,smec"], "sweeps/smec48_bn_all": ["method=smec", "method.bn_statistics=all"]}


def sweep_commands() -> dict[str, list[str]]:
    commands = dict(SWEEPS)
    for name, (method, overrides) in ABLATIONS.items():
        commands[f"sweeps/ablation/{name}"] = [MAIN, f"method={method}", "noise.rate=0.4", *overrides]
    for out, extra in SMEC_48.items():
        commands[out] = [MAIN, *extra, *SMEC_48_SETTING]
    return commands


def run_all(jobs: int) -> None:
    noisyfer = [sys.executable, "-m", "noisyfer"]
    for weights, config in PRETRAINS.items():
        if not Path(weights).is_file():
            subprocess.run([*noisyfer, "train", config], check=True)
    for out, arguments in sweep_commands().items():
        subprocess.run([*noisyfer, "sweep", *arguments, "--out", out, "--jobs", str(jobs)], check=True)


def finished_rows(sweep_dir: str) -> list[dict]:
    if not (Path(sweep_dir) / "sweep.yaml").is_file():
        return []
    return [row for row in collect_sweep(sweep_dir) if row.get("status") == "finished"]


def select(rows: list[dict], **where) -> list[dict]:
    return [r for r in rows if all(_same(r.get(k), v) for k, v in where.items())]


def _same(a, b) -> bool:
    if isinstance(b, float):
        return a is not None and math.isclose(float(a), b)
    return a == b


def cell(rows: list[dict], fields=("accuracy_last", "accuracy_best"), *, scale: float = 100.0, digits: int = 1) -> str:
    """``mean +- std / mean +- std`` of each field over the rows; ``-`` when there are none."""
    parts, count = [], 0
    for field in fields:
        mean, std, count = mean_std([r.get(field) for r in rows])
        if count == 0:
            return "-"
        spread = f" ± {std * scale:.{digits}f}" if count > 1 else ""
        parts.append(f"{mean * scale:.{digits}f}{spread}")
    return " / ".join(parts) + ("" if count == 3 else f" (n={count})")


def table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def relabel_cells(rows: list[dict]) -> list[str]:
    """Mean over seeds of label changes, returns to an earlier label and relabel precision."""
    reports = [relabel_report(r["run_dir"], true_labels="dataset") for r in rows]
    if not reports:
        return ["-", "-", "-"]
    precision = [r.accuracy["relabel_precision"] for r in reports if r.accuracy]
    return [f"{np.mean([r.total_changes for r in reports]):.0f}", f"{np.mean([r.total_returns for r in reports]):.0f}",
            f"{np.nanmean(precision):.2f}" if precision else "-"]


def kl_cells(rows: list[dict]) -> list[str]:
    """Mean KL(true || learned) of the last epoch's label distributions, and of the one-hot given labels."""
    learned, one_hot = [], []
    for row in rows:
        run = Path(row["run_dir"])
        config = resolve_config({**load_yaml(run / "config.yaml"), "resume": None})
        record_file = run / "samples" / f"epoch_{config.train.epochs:03d}.npz"
        if not record_file.is_file():
            continue
        with np.load(record_file) as record:
            if "label_dist" not in record:
                continue
            dist = record["label_dist"]
        train = create_dataset(config.data, config.data_options)["train"]
        given = load_noisy_labels(run / "train_labels.csv", num_samples=len(train), num_classes=train.num_classes)
        kl = compare_label_distributions(dist, train.columns["label_dist"], given.labels)
        learned.append(kl["kl_learned"])
        one_hot.append(kl["kl_one_hot"])
    return [f"{np.mean(learned):.2f}", f"{np.mean(one_hot):.2f}"] if learned else ["-", "-"]


def claims() -> str:
    main = finished_rows("sweeps/sim_memorization")
    asym = finished_rows("sweeps/sim_memorization_asym")
    pop2 = finished_rows("sweeps/sim_memorization_pop2")
    ablation = {name: finished_rows(f"sweeps/ablation/{name}") for name in ABLATIONS}

    def at(rows, method, rate):
        return select(rows, method=method, noise_rate=rate)

    def row(label, method, *, rows40=None, rows20=None, extra=()):
        return [label, cell(rows20 if rows20 is not None else at(main, method, 0.2)),
                cell(rows40 if rows40 is not None else at(main, method, 0.4)), *extra]

    sections = []
    header = ["", "symm. 20 %", "symm. 40 %"]
    lines = []
    for base in ("scn", "rul", "dmue"):
        for method in (base, f"{base}_c"):
            rel = relabel_cells(at(main, method, 0.4)) if base == "scn" else ["n/a"] * 3
            lines.append(row(method, method, extra=rel))
    bias = ablation["proximity_bias"]
    for method in ("scn_c", "rul_c"):
        lines.append(row(f"{method}, classifier_bias=true", method, rows20=[], rows40=at(bias, method, 0.4),
                         extra=relabel_cells(at(bias, method, 0.4)) if method == "scn_c" else ["n/a"] * 3))
    lines.append(row("rul_c, aux_center=false", "rul_c", rows20=[], rows40=at(ablation["rul_c_aux_off"], "rul_c", 0.4),
                     extra=["n/a"] * 3))
    sections.append("000 embedding proximity: test accuracy, last / best (%); relabel changes, returns to an "
                    "earlier label and relabel precision at 40 % (mean over seeds)\n\n"
                    + table([*header, "changes", "returns", "precision"], lines))

    lines = [row(m, m) + [cell(at(pop2, m, 0.4)), cell(select(asym, method=m))] for m in ("ce", "eac", "smec")]
    lines.append(row("smec, bn_statistics=all", "smec", rows20=[], rows40=at(ablation["smec_bn_all"], "smec", 0.4))
                 + ["-", "-"])
    for out, label in (("sweeps/smec48", ""), ("sweeps/smec48_bn_all", ", bn_statistics=all")):
        for r in finished_rows(out):
            lines.append([f"{r['method']}{label}, 48 px, data.seed=3", "-", cell([r]), "-", "-"])
    sections.append("001 SMEC: test accuracy, last / best (%)\n\n"
                    + table([*header, "population 2, 40 %", "asym. 30 %"], lines))

    lines = [row("ce", "ce"),
             row("lrn, heteroscedastic=false, cld_weight=0", "lrn", rows20=[], rows40=at(ablation["lrn_both_off"], "lrn", 0.4)),
             row("lrn, heteroscedastic=false (+ CLD)", "lrn", rows20=[], rows40=at(ablation["lrn_het_off"], "lrn", 0.4)),
             row("lrn, cld_weight=0 (heteroscedastic only)", "lrn", rows20=[], rows40=at(ablation["lrn_cld_off"], "lrn", 0.4)),
             row("lrn (both)", "lrn"),
             row("lrn, centers=learned (before issue 14)", "lrn", rows20=[],
                 rows40=at(ablation["lrn_centers_learned"], "lrn", 0.4))]
    sections.append("002 LRN (paper 002, Table 2): test accuracy, last / best (%)\n\n" + table(header, lines))

    lines = [row("ce", "ce"), row("ncctfer, variant=pc (confident samples only)", "ncctfer", rows20=[],
                                  rows40=at(ablation["ncctfer_pc"], "ncctfer", 0.4)),
             row("ncctfer (+ negative head)", "ncctfer")]
    lines = [line + [cell(select(asym, method=m))] for line, m in zip(lines, ("ce", "-", "ncctfer"))]
    sections.append("003 NCCTFER (paper 003, Table 5): test accuracy, last / best (%)\n\n"
                    + table([*header, "asym. 30 %"], lines))

    lines = [row("ce", "ce", extra=["-", "-"]),
             row("ldlva, pseudo VA at published error (default)", "ldlva", extra=kl_cells(at(main, "ldlva", 0.4))),
             row("ldlva, pseudo VA at the legacy error", "ldlva", rows20=[],
                 rows40=at(ablation["ldlva_legacy_va"], "ldlva", 0.4), extra=kl_cells(at(ablation["ldlva_legacy_va"], "ldlva", 0.4))),
             row("ldlva, true VA", "ldlva", rows20=[], rows40=at(ablation["ldlva_true_va"], "ldlva", 0.4),
                 extra=kl_cells(at(ablation["ldlva_true_va"], "ldlva", 0.4)))]
    sections.append("004 LDLVA: test accuracy, last / best (%); KL(true || learned) and KL(true || one-hot labels) "
                    "at 40 %, nats\n\n" + table([*header, "KL learned", "KL labels"], lines))

    lines = [[m, cell(at(main, m, 0.4)), cell(at(pop2, m, 0.4))] for m in sorted({r["method"] for r in main + pop2},
                                                                               key=lambda m: (m != "ce", m))]
    sections.append("Headline: 40 % symmetric noise on both populations, test accuracy last / best (%)\n\n"
                    + table(["method", "population 1 (32 px)", "population 2 (24 px)"], lines))
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true", help="train the missing runs first (resumable)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at once for --run (default 2)")
    args = parser.parse_args(argv)
    try:
        if args.run:
            run_all(args.jobs)
        print(claims())
    except UserError as error:
        print(f"paper_claims: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
