"""Each seed paper's central claim on the FER simulator, read from the shipped sweeps (issue 14).

Every number comes from finished run directories of these sweeps, all in the memorization regime of
``configs/sweeps/sim_memorization.yaml`` (read its comments), 3 seeds unless a table says ``n``:

* the results table itself (``sim_memorization.yaml``, 20 % and 40 % symmetric noise) and its 30 %
  asymmetric companion for ``ce`` and the seed methods (``sim_memorization_asym.yaml``);
* the second simulated population (``sim_memorization_pop2.yaml``: simulator seed 3, 36 px, ambiguity 0.45);
* the ablations in :data:`ABLATIONS`: the same sweep narrowed to one method at 40 % with one option
  changed (the "before issue 14" settings and the papers' own ablations), each in its own directory;
* further runs in :data:`EXTRA` (SMEC at 48 px from the 32 px stand-in; SMEC on population 2 with BN statistics
  of every forward; EAC and SMEC with their consistency weight at 1 on both populations, for the early drop).

::

    .venv/bin/python benchmarks/paper_claims.py --run --jobs 2   # train what is missing (resumable; hours on a CPU)
    .venv/bin/python benchmarks/paper_claims.py                  # the claim tables, from the finished runs
    .venv/bin/python benchmarks/paper_claims.py --write-archive  # ... and keep every run's record

Runs are deterministic (same machine, same seed, same numbers), so the tables can be completed in several
sittings: ``benchmarks/results/paper_claims_runs.csv`` keeps one record per finished run (accuracies,
memorization, relabel and label-distribution figures), and a run whose directory is not here is read from
it. The record of the pretrained stand-ins (their SHA-256) is in ``benchmarks/results/README.md``: check
it before mixing new runs with archived ones.

The main sweeps need their pretrained stand-ins first (``noisyfer train configs/ce_sim_pretrain.yaml`` and
``configs/ce_sim_pretrain_36.yaml``); ``--run`` trains them when missing. Cells are mean +- sample std
in %, last epoch / best epoch, over the finished seeds (``n`` says how many when fewer than 3).
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from noisyfer.analysis.fidelity import run_label_distribution_closeness
from noisyfer.analysis.relabel import relabel_report
from noisyfer.analysis.rundata import RunData
from noisyfer.errors import UserError
from noisyfer.sweep.aggregate import mean_std
from noisyfer.sweep.results import collect_sweep
from noisyfer.sweep.spec import SweepSpec

MAIN = "configs/sweeps/sim_memorization.yaml"
POP2 = "configs/sweeps/sim_memorization_pop2.yaml"
#: Per-run records of the runs behind the README's tables (so they can be re-read and extended without the runs).
ARCHIVE = Path(__file__).resolve().parent / "results" / "paper_claims_runs.csv"
#: The results table before issue 14's changes (the README at commit 4da6cb7, another stand-in): mean and
#: sample std in %, per method, metric and noise setting.
BEFORE = Path(__file__).resolve().parent / "results" / "before_issue14.csv"
#: What issue 14 changed in each method it changed (in the issue's order).
CHANGED = {"lrn": "CLD pulls towards class means", "scn_c": "bias-free classifier", "rul_c": "bias-free classifier",
           "ncctfer": "colour inversion in the strong view", "smec": "flips only; BN statistics of whole faces",
           "dmue": "L_sp weight scaled to the ramp steps", "dmue_c": "L_sp weight scaled to the ramp steps",
           "ldlva": "pseudo VA calibrated to EmoNet"}
PRETRAINS = {"runs/sim_pretrain/best_model.pt": "configs/ce_sim_pretrain.yaml",
             "runs/sim_pretrain_36/best_model.pt": "configs/ce_sim_pretrain_36.yaml"}
#: Sweep directory -> the command-line arguments of ``noisyfer sweep`` that make it.
SWEEPS = {
    "sweeps/sim_memorization": [MAIN, "noise.rate=0.4,0.2"],
    "sweeps/sim_memorization_asym": ["configs/sweeps/sim_memorization_asym.yaml"],
    "sweeps/sim_memorization_pop2": [POP2],
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
    "smec_erasing": ("smec", ["augment.erasing=0.5"]),
    "ldlva_true_va": ("ldlva", ["method.va_columns=[valence,arousal]"]),
    "ldlva_legacy_va": ("ldlva", ["data.pseudo_va_error=legacy"]),
}
SMEC_48_SETTING = ["noise.rate=0.4", "seed=0", "data.seed=3", "data.image_size=48"]
#: The CAM-consistency weight of each method that has one (EAC's lam, SMEC's Eq. 6 lambda).
CONSISTENCY_WEIGHT = {"eac": "method.lam", "smec": "method.consistency_weight"}
#: Further runs: directory -> arguments of ``noisyfer sweep``. SMEC at 48 px on another population from the
#: 32 px stand-in (seed 0); SMEC on population 2 with BN statistics of every forward; EAC and SMEC with
#: their consistency weight at 1 (seed 0 of both populations).
EXTRA = {"sweeps/smec48": [MAIN, "method=ce,smec", *SMEC_48_SETTING],
         "sweeps/pop2_smec_bn_all": [POP2, "method=smec", "seed=0", "method.bn_statistics=all"],
         "sweeps/drift/eac_lam1": [MAIN, "method=eac", "noise.rate=0.4", "seed=0", "method.lam=1"],
         "sweeps/drift/pop2_eac_lam1": [POP2, "method=eac", "seed=0", "method.lam=1"],
         "sweeps/drift/smec_weight1": [MAIN, "method=smec", "noise.rate=0.4", "seed=0", "method.consistency_weight=1"],
         "sweeps/drift/pop2_smec_weight1": [POP2, "method=smec", "seed=0", "method.consistency_weight=1"]}
#: Epochs in which the early drop is looked for.
EARLY_EPOCHS = 5


def weights_digest(path: str | Path) -> str:
    """SHA-256 of a checkpoint's weights (keys and tensor bytes in key order), blind to where it was written."""
    import hashlib

    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)["method"]
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


def sweep_commands() -> dict[str, list[str]]:
    commands = dict(SWEEPS)
    for name, (method, overrides) in ABLATIONS.items():
        commands[f"sweeps/ablation/{name}"] = [MAIN, f"method={method}", "noise.rate=0.4", *overrides]
    commands.update(EXTRA)
    return commands


def run_all(jobs: int) -> None:
    noisyfer = [sys.executable, "-m", "noisyfer"]
    for weights, config in PRETRAINS.items():
        if not Path(weights).is_file():
            subprocess.run([*noisyfer, "train", config], check=True)
    for out, arguments in sweep_commands().items():
        subprocess.run([*noisyfer, "sweep", *arguments, "--out", out, "--jobs", str(jobs)], check=True)


#: Fields of one run's record (the archive's columns).
RECORD_FIELDS = ("sweep", "name", "method", "noise_kind", "noise_rate", "seed", "accuracy_last", "accuracy_best",
                 "balanced_accuracy_last", "balanced_accuracy_best", "noisy_memorized_last", "relabel_changes",
                 "relabel_returns", "relabel_precision", "kl_learned", "kl_one_hot", "accuracy_first",
                 "accuracy_dip", "dip_epoch", "top_class_share_dip", "consistency_over_ce_first")


def live_records(sweep_dir: str, arguments: list[str] | None = None) -> list[dict]:
    """One record per finished run of a sweep directory (none when it does not exist): the points of
    its stored sweep.yaml (the last, maybe narrowed, invocation) and of the full command."""
    if not (Path(sweep_dir) / "sweep.yaml").is_file():
        return []
    rows = collect_sweep(sweep_dir)
    if arguments:
        rows += collect_sweep(sweep_dir, SweepSpec.from_args(arguments))
    records, seen = [], set()
    for row in rows:
        if row.get("status") != "finished" or row["run_dir"] in seen:
            continue
        seen.add(row["run_dir"])
        record = {key: row.get(key) for key in RECORD_FIELDS}
        run = Path(row["run_dir"])
        record.update(sweep=sweep_dir, **relabel_figures(run), **label_distribution_kl(run), **early_figures(run))
        records.append(record)
    return records


def read_archive(path: Path) -> list[dict]:
    """Records written by ``--archive`` (numbers parsed, empty cells None)."""
    records = []
    with open(path, newline="") as handle:
        for line in csv.DictReader(handle):
            record = {}
            for key in RECORD_FIELDS:
                text = line.get(key, "")
                if key in ("sweep", "name", "method", "noise_kind"):
                    record[key] = text
                else:
                    record[key] = None if text in ("", "None", "nan") else float(text)
            records.append(record)
    return records


def write_archive(records: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RECORD_FIELDS)
        writer.writeheader()
        for record in sorted(records, key=lambda r: (r["sweep"], r["name"])):
            writer.writerow({k: ("" if record.get(k) is None else record[k]) for k in RECORD_FIELDS})


def gather(archive: Path | None) -> list[dict]:
    """Live records of every sweep, plus archived records of runs that are not here (live ones win)."""
    records = [r for out, arguments in sweep_commands().items() for r in live_records(out, arguments)]
    if archive is not None and archive.is_file():
        have = {run_identity(r) for r in records}
        records += [r for r in read_archive(archive) if run_identity(r) not in have]
    return records


def run_identity(record: dict) -> tuple:
    """What a record measures (a narrowed sweep names the same run differently)."""
    return (record["sweep"], record["method"], record["noise_kind"], float(record["noise_rate"]), int(record["seed"]))


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


def mean_cell(rows: list[dict], field: str, fmt: str, *, scale: float = 1.0) -> str:
    mean, _, count = mean_std([r.get(field) for r in rows])
    return "-" if count == 0 else format(mean * scale, fmt)


def table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def relabel_figures(run: Path) -> dict:
    """Label changes, returns to an earlier label and relabel precision of a relabeling run (else empty)."""
    if not any(run.glob("samples/epoch_*.npz")):
        return {}
    try:
        report = relabel_report(run, true_labels="dataset")
    except UserError:  # a method without per-sample labels
        return {}
    if report.total_changes == 0 and not report.accuracy:
        return {}
    return {"relabel_changes": report.total_changes, "relabel_returns": report.total_returns,
            "relabel_precision": report.accuracy["relabel_precision"] if report.accuracy else None}


def label_distribution_kl(run: Path) -> dict:
    """Mean KL(true || learned) of the last epoch's label distributions and of the one-hot given labels."""
    closeness = run_label_distribution_closeness(run)
    return {key: closeness[key] for key in ("kl_learned", "kl_one_hot") if key in closeness}


def top_class_share(confusion) -> float:
    """Share of the test predictions that go to the most predicted class (1.0: one class for every face)."""
    predicted = np.asarray(confusion, dtype=np.float64).sum(axis=0)
    return float(predicted.max() / predicted.sum())


def early_figures(run: Path) -> dict:
    """The first epochs of a run: test accuracy at epoch 1, its lowest point in the first
    :data:`EARLY_EPOCHS` epochs (and when), how concentrated the predictions are there, and, for a
    method with a CAM-consistency term, that term (times its weight) over the cross-entropy at epoch 1."""
    data = RunData(run)
    epochs = data.metrics[:EARLY_EPOCHS]
    if not epochs:
        return {}
    dip = min(epochs, key=lambda r: r["test_accuracy"])
    out = {"accuracy_first": epochs[0]["test_accuracy"], "accuracy_dip": dip["test_accuracy"],
           "dip_epoch": dip["epoch"], "top_class_share_dip": top_class_share(dip["test_confusion"])}
    option = CONSISTENCY_WEIGHT.get(data.method)
    if option is not None and "train_consistency" in epochs[0]:
        key = option.split(".", 1)[1]
        weight = (data.summary.get("method_resolved") or {}).get(key)
        if weight is None:
            weight = (data.tree.get("method") or {}).get(key)
        out["consistency_over_ce_first"] = float(weight) * epochs[0]["train_consistency"] / epochs[0]["train_ce"]
    return out


def before_after(records: list[dict], before_file: Path = BEFORE) -> str:
    """Last-epoch test accuracy before issue 14 (archived table) and now, at 20 % and 40 % symmetric and
    30 % asymmetric noise; rows: ``ce``, the methods issue 14 changed, then the others."""
    before = {}
    with open(before_file, newline="") as handle:
        for line in csv.DictReader(handle):
            if line["metric"] == "accuracy":
                spread = f" ± {float(line['last_std']):.1f}" if line["last_std"] else ""
                n = "" if line["n"] == "3" else f" (n={line['n']})"
                before[line["method"], line["noise_kind"], float(line["noise_rate"])] = f"{float(line['last_mean']):.1f}{spread}{n}"
    settings = [("symmetric", 0.2, "sim_memorization"), ("symmetric", 0.4, "sim_memorization"),
                ("asymmetric", 0.3, "sim_memorization_asym")]
    order = ["ce", *CHANGED]
    methods = sorted({key[0] for key in before}, key=lambda m: (order.index(m) if m in order else len(order), m))
    lines = []
    for method in methods:
        line = [method, CHANGED.get(method, "-")]
        for kind, rate, sweep in settings:
            now = cell(select(records, sweep=f"sweeps/{sweep}", method=method, noise_kind=kind, noise_rate=rate),
                       ("accuracy_last",))
            then = before.get((method, kind, rate), "-")
            line.append("-" if then == now == "-" else f"{then} → {now}")
        lines.append(line)
    return ("Before and after issue 14: test accuracy at the last epoch (%), before (README at 4da6cb7, "
            "another stand-in) → now\n\n"
            + table(["method", "changed", "symm. 20 %", "symm. 40 %", "asym. 30 %"], lines))


def claims(records: list[dict]) -> str:
    def of(sweep: str) -> list[dict]:
        return select(records, sweep=sweep)

    main, asym, pop2 = of("sweeps/sim_memorization"), of("sweeps/sim_memorization_asym"), of("sweeps/sim_memorization_pop2")

    def ablation(name: str) -> list[dict]:
        return of(f"sweeps/ablation/{name}")

    def at(rows, method, rate=0.4):
        return select(rows, method=method, noise_rate=rate)

    def row(label, method, *, rows40=None, rows20=None, extra=()):
        return [label, cell(rows20 if rows20 is not None else at(main, method, 0.2)),
                cell(rows40 if rows40 is not None else at(main, method, 0.4)), *extra]

    def relabel(rows):
        return [mean_cell(rows, "relabel_changes", ".0f"), mean_cell(rows, "relabel_returns", ".0f"),
                mean_cell(rows, "relabel_precision", ".2f")]

    def kl(rows):
        return [mean_cell(rows, "kl_learned", ".2f"), mean_cell(rows, "kl_one_hot", ".2f")]

    header = ["", "symm. 20 %", "symm. 40 %"]
    sections = []
    lines = [row(m, m, extra=[*relabel(at(main, m)), cell(select(asym, method=m))])
             for base in ("scn", "rul", "dmue") for m in (base, f"{base}_c")]
    bias = ablation("proximity_bias")
    lines += [row(f"{m}, classifier_bias=true", m, rows20=[], rows40=at(bias, m), extra=[*relabel(at(bias, m)), "-"])
              for m in ("scn_c", "rul_c")]
    lines.append(row("rul_c, aux_center=false", "rul_c", rows20=[], rows40=ablation("rul_c_aux_off"), extra=["-"] * 4))
    sections.append("000 embedding proximity: test accuracy, last / best (%); label changes, returns to an earlier "
                    "label and relabel precision at 40 % (mean over seeds; - for methods that do not relabel)\n\n"
                    + table([*header, "changes", "returns", "precision", "asym. 30 %"], lines))

    def memorized(rows):
        return [mean_cell(rows, "noisy_memorized_last", ".2f")]

    lines = [row(m, m, extra=memorized(at(main, m))) + [cell(at(pop2, m)), cell(select(asym, method=m))]
             for m in ("ce", "elr", "eac", "smec")]
    for name, label in (("smec_bn_all", "smec, bn_statistics=all"), ("smec_erasing", "smec, augment.erasing=0.5")):
        lines.append(row(label, "smec", rows20=[], rows40=ablation(name), extra=memorized(ablation(name))) + ["-", "-"])
    lines.append(["smec, bn_statistics=all (population 2)", "-", "-", "-", cell(of("sweeps/pop2_smec_bn_all")), "-"])
    for r in of("sweeps/smec48"):
        lines.append([f"{r['method']}, 48 px, data.seed=3, 32 px stand-in (n=1)", "-", cell([r]),
                      mean_cell([r], "noisy_memorized_last", ".2f"), "-", "-"])
    sections.append("001 SMEC: test accuracy, last / best (%); share of the flipped training labels predicted at the "
                    "last epoch (40 %)\n\n"
                    + table([*header, "memorized", "population 2, 40 %", "asym. 30 %"], lines))

    lines = [row("ce", "ce"),
             row("lrn, heteroscedastic=false, cld_weight=0", "lrn", rows20=[], rows40=ablation("lrn_both_off")),
             row("lrn, heteroscedastic=false (CLD only)", "lrn", rows20=[], rows40=ablation("lrn_het_off")),
             row("lrn, cld_weight=0 (heteroscedastic only)", "lrn", rows20=[], rows40=ablation("lrn_cld_off")),
             row("lrn (both)", "lrn"),
             row("lrn, centers=learned (before issue 14)", "lrn", rows20=[], rows40=ablation("lrn_centers_learned"))]
    sections.append("002 LRN (paper 002, Table 2): test accuracy, last / best (%)\n\n" + table(header, lines))

    lines = [row("ce", "ce") + [cell(select(asym, method="ce"))],
             row("ncctfer, variant=pc (confident samples only)", "ncctfer", rows20=[], rows40=ablation("ncctfer_pc")) + ["-"],
             row("ncctfer (+ negative head)", "ncctfer") + [cell(select(asym, method="ncctfer"))]]
    sections.append("003 NCCTFER (paper 003, Table 5): test accuracy, last / best (%)\n\n"
                    + table([*header, "asym. 30 %"], lines))

    lines = [row("ce", "ce", extra=["-", "-"]),
             row("ldlva (pseudo VA at the published error, default)", "ldlva", extra=kl(at(main, "ldlva"))),
             row("ldlva, pseudo VA at the legacy error", "ldlva", rows20=[], rows40=ablation("ldlva_legacy_va"),
                 extra=kl(ablation("ldlva_legacy_va"))),
             row("ldlva, true VA", "ldlva", rows20=[], rows40=ablation("ldlva_true_va"), extra=kl(ablation("ldlva_true_va")))]
    sections.append("004 LDLVA: test accuracy, last / best (%); KL(true || learned) and KL(true || one-hot given "
                    "labels) at 40 %, nats\n\n" + table([*header, "KL learned", "KL labels"], lines))

    def early(label, rows):
        def percent(field):
            return mean_cell(rows, field, ".1f", scale=100.0)
        dip = percent("accuracy_dip")
        if len(rows) == 1 and dip != "-":
            dip += f" (epoch {mean_cell(rows, 'dip_epoch', '.0f')})"
        return [label, percent("accuracy_first"), dip, mean_cell(rows, "top_class_share_dip", ".2f"),
                mean_cell(rows, "consistency_over_ce_first", ".1f"), percent("accuracy_last")]

    lines = []
    for population, rows, prefix in (("population 1", main, "sweeps/drift/"), ("population 2", pop2, "sweeps/drift/pop2_")):
        for m in ("ce", "elr", "eac", "smec"):
            lines.append(early(f"{m} ({population})", select(rows, method=m, noise_rate=0.4, seed=0)))
        lines.append(early(f"eac, lam=1 ({population})", of(prefix + "eac_lam1")))
        lines.append(early(f"smec, consistency_weight=1 ({population})", of(prefix + "smec_weight1")))
        for m in ("ce", "eac", "smec"):
            every = select(rows, method=m, noise_rate=0.4)
            if len(every) > 1:
                lines.append(early(f"{m} ({population}, mean of {len(every)} seeds)", every))
    sections.append(f"001 the early drop (40 %; seed 0 unless a row says otherwise): test accuracy at epoch 1 and its "
                    f"lowest point in epochs 1-{EARLY_EPOCHS} (%, its epoch); share of the test predictions in the "
                    "most predicted class there; weighted CAM-consistency term over the cross-entropy, means over "
                    "epoch 1; last epoch (%)\n\n"
                    + table(["", "epoch 1", "lowest", "top-class share", "consistency / CE", "last"], lines))

    columns = [("clean", select(main, noise_rate=0.0)), ("symm. 20 %", select(main, noise_rate=0.2)),
               ("symm. 40 %", select(main, noise_rate=0.4)), ("asym. 30 %", asym),
               ("population 2, symm. 40 %", select(pop2, noise_rate=0.4))]
    columns = [(title, rows) for title, rows in columns if rows]
    methods = sorted({r["method"] for _, rows in columns for r in rows}, key=lambda m: (m != "ce", m))
    for metric, fields in (("test accuracy", ("accuracy_last", "accuracy_best")),
                           ("balanced test accuracy", ("balanced_accuracy_last", "balanced_accuracy_best"))):
        lines = [[m] + [cell(select(rows, method=m), fields) for _, rows in columns] for m in methods]
        sections.append(f"Results table: {metric}, last / best epoch (%)\n\n"
                        + table(["method"] + [title for title, _ in columns], lines))
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true", help="train the missing runs first (resumable)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at once for --run (default 2)")
    parser.add_argument("--archive", type=Path, default=ARCHIVE,
                        help="per-run records: runs whose directories are not here are read from it, and "
                             "--write-archive writes it (default benchmarks/results/paper_claims_runs.csv)")
    parser.add_argument("--write-archive", action="store_true", help="(re)write --archive with every record")
    args = parser.parse_args(argv)
    try:
        if args.run:
            run_all(args.jobs)
        records = gather(args.archive)
        if args.write_archive:
            write_archive(records, args.archive)
        for weights in PRETRAINS:
            if Path(weights).is_file():
                print(f"{weights}: weights sha256 {weights_digest(weights)}")
        print(claims(records))
        print()
        print(before_after(records))
    except UserError as error:
        print(f"paper_claims: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
