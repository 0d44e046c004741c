"""The ``sweep``, ``report`` and ``suspects`` subcommands."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError

__all__ = ["add_parsers", "report", "suspects", "sweep"]


def add_parsers(subparsers, parser_class=None) -> None:
    """Register the subcommands on ``subparsers`` (whose parsers are already of the CLI's parser class;
    ``parser_class`` is accepted for symmetry and unused)."""
    p = subparsers.add_parser(
        "sweep", help="run a grid of trainings (methods x noise x seeds), resumable; aggregate the results",
        description="noisyfer sweep [SWEEP.yaml | CONFIG.yaml] key=value key=a,b,c ... : every combination of the "
                    "comma-separated values is one run in OUT/runs/<name>. Re-running the same command skips "
                    "finished runs and resumes killed ones.")
    p.add_argument("items", nargs="*", metavar="ARG", help="a sweep or run config file, then key=value / key=a,b,c")
    p.add_argument("--out", help="sweep directory (default: the sweep file's 'out', else sweeps/<file stem>)")
    p.add_argument("--jobs", type=int, default=None,
                   help="points trained at the same time (default 1; --executor slurm: the array's limit, "
                        "default all)")
    p.add_argument("--shard", help="I/N: run only the I-th of N disjoint parts of the grid (several machines)")
    p.add_argument("--device", help="device per job slot, comma-separated and used in turn (e.g. cuda:0,cuda:1); "
                                    "with slurm one device for all (default: the config's, auto)")
    p.add_argument("--collect", action="store_true", help="train nothing: only collect results and write tables")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would run, train nothing (with slurm: also the sbatch file)")
    p.add_argument("--report", action="store_true", help="also write OUT/report.html when done")
    add_scheduler_options(p)
    p.set_defaults(func=sweep, trailing="items")

    p = subparsers.add_parser("report", help="write an HTML report (and Markdown summary) of a run, a sweep or runs")
    p.add_argument("paths", nargs="+", metavar="DIR", help="a run directory, a sweep directory, or folders of runs")
    p.add_argument("--out", help="HTML file to write (default DIR/report.html; needed for several DIRs)")
    p.add_argument("--no-features", action="store_true",
                   help="skip the analyses that load the weights (compactness, t-SNE, CAMs, suspects)")
    p.add_argument("--checkpoint", default="best", help="weights of a run report: best, last or a file")
    p.add_argument("--device", default=None, help="device for the feature analyses (default: the run's)")
    p.add_argument("--top", type=int, default=24, help="suspected mislabels shown in a run report")
    p.add_argument("--tsne-samples", type=int, default=800, help="test samples in each t-SNE plot")
    p.set_defaults(func=report)

    p = subparsers.add_parser(
        "suspects", help="find the wrong training labels: ranked CSV + grid, estimated count, noise rate and matrix",
        description="noisyfer suspects RUN_DIR | CV_DIR, or noisyfer suspects --cv K [CONFIG.yaml] key=value ... : "
                    "rank the training samples by how likely their label is wrong, estimate how many are (cleanlab), "
                    "and optionally write the cleaned dataset. --cv trains K fold runs (resumable, like a sweep) so "
                    "that every sample is scored by a model that did not train on it.")
    p.add_argument("items", nargs="*", metavar="ARG",
                   help="a run or cross-validation directory; with --cv: [CONFIG.yaml] key=value train settings")
    p.add_argument("--cv", type=int, metavar="K", help="train K fold runs and use their out-of-fold probabilities")
    p.add_argument("--cv-dir", help="directory of the fold runs (default runs/cv<K>)")
    p.add_argument("--fold-seed", type=int, default=0, help="seed of the stratified folds (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="fold runs trained at the same time (default 1)")
    p.add_argument("--score", default="self_confidence", choices=("self_confidence", "margin", "method"),
                   help="self_confidence: 1 - p(given); margin: best other p - p(given); method: the run's "
                        "method's own per-sample signal (default self_confidence)")
    p.add_argument("--probs", metavar="FILE.npy", help="(N, C) probabilities of an outside model for the "
                   "training samples, in the dataset's order (instead of the run's own)")
    p.add_argument("--top", type=int, default=None,
                   help="number of samples to list (default: cleanlab's estimated number of label issues)")
    p.add_argument("--out", help="CSV file (default DIR/suspects.csv; the grid is the same name .png, the "
                   "estimates .json)")
    p.add_argument("--clean-out", metavar="DIR", help="write the dataset with the listed suspects removed or "
                   "relabelled (train on it with data=noisyfer data.root=DIR)")
    p.add_argument("--clean", default="remove", choices=("remove", "relabel"),
                   help="what --clean-out does with the suspects (default remove)")
    p.add_argument("--checkpoint", default="best", help="weights of a run: best, last or a checkpoint file")
    p.add_argument("--device", default=None, help="device of the model (with --cv: of the fold runs)")
    p.set_defaults(func=suspects)


def add_scheduler_options(p) -> None:
    """``--executor`` and the settings of a point's submitit job (``noisyfer sweep``)."""
    g = p.add_argument_group("scheduler", "run the points as submitit jobs: on this machine (local) or as a Slurm "
                                          "job array (slurm); each job trains, resumes or skips its point")
    g.add_argument("--executor", default="process", choices=("process", "local", "slurm"),
                   help="process: this command trains the points (default); local: submitit jobs on this machine; "
                        "slurm: submit one Slurm job array and return")
    g.add_argument("--time", help="time limit of one point's job, minutes or [D-]H:MM:SS (required with slurm); a "
                                  "point still running then is requeued and resumes from its last checkpoint")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--gpus", type=int, help="GPUs of one point's job (sbatch --gpus-per-node)")
    g.add_argument("--cpus", type=int, help="CPUs of one point's job (sbatch --cpus-per-task; sets OMP_NUM_THREADS)")
    g.add_argument("--mem", help="memory of one point's job with a unit, e.g. 32G (sbatch --mem)")
    g.add_argument("--account", help="Slurm account charged (sbatch --account)")
    g.add_argument("--qos", help="Slurm quality of service (sbatch --qos)")
    g.add_argument("--constraint", help="Slurm node features, e.g. a100 (sbatch --constraint)")
    g.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch setting, repeatable: --slurm mail-type=END --slurm requeue")
    g.add_argument("--setup", action="append", default=[], metavar="CMD",
                   help="shell command run in each job before it trains, repeatable (e.g. 'module load cuda')")
    g.add_argument("--log-dir", help="submitit's folder of job files and logs (default OUT/submitit)")
    g.add_argument("--requeues", type=int, help="times a point's job is requeued after reaching --time (default 3; "
                                                "preemptions always requeue)")


def scheduler_options(args):
    from ..sweep.scheduler_options import SchedulerOptions

    return SchedulerOptions(executor=args.executor, jobs=args.jobs, time=args.time, partition=args.partition,
                            gpus=args.gpus, cpus=args.cpus, mem=args.mem, account=args.account, qos=args.qos,
                            constraint=args.constraint, slurm=args.slurm, setup=args.setup, log_dir=args.log_dir,
                            requeues=args.requeues)


def _sweep_dir(args, spec) -> Path:
    if args.out:
        return Path(args.out)
    if spec.out:
        return Path(spec.out)
    if spec.source:
        return Path("sweeps") / Path(spec.source).stem
    raise UserError("sweep: say where the sweep goes (--out DIR)")


def sweep(args) -> int:
    from ..sweep import SweepSpec, collect_sweep, load_sweep_spec, parse_shard, run_sweep, write_outputs

    if not args.items:
        if not (args.collect and args.out):
            raise UserError("sweep: give a sweep file or key=a,b,c grid values (or --collect --out DIR)")
        spec = load_sweep_spec(args.out)
    else:
        spec = SweepSpec.from_args(args.items)
    out = _sweep_dir(args, spec)
    failed = 0
    options = scheduler_options(args)
    if not args.collect:
        devices = tuple(d.strip() for d in args.device.split(",") if d.strip()) if args.device else ()
        shard = parse_shard(args.shard)
        if options.executor == "slurm" and args.report:
            raise UserError(f"--report: with --executor slurm the runs finish later; then run noisyfer report {out}")
        try:
            if options.executor == "process":
                counts = run_sweep(spec, out, jobs=options.jobs or 1, shard=shard, devices=devices,
                                   dry_run=args.dry_run)
            else:
                from ..sweep.scheduler import submit_sweep

                counts = submit_sweep(spec, out, options=options, shard=shard, devices=devices, dry_run=args.dry_run)
        except KeyboardInterrupt:
            print(f"noisyfer: sweep interrupted; run the same command again to continue ({out})", file=sys.stderr)
            return 130
        if args.dry_run or options.executor == "slurm":
            return 0  # the Slurm jobs train later: collect then (the submission printed how)
        failed = counts.get("failed", 0)
        print("runs: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    elif not (out / "sweep.yaml").is_file():
        raise UserError(f"--collect: not a sweep directory (no sweep.yaml): {out}")
    rows = collect_sweep(out, spec)
    groups, tables, files = write_outputs(rows, out, replicates=spec.replicates)
    for metric in ("accuracy_best", "accuracy_last"):
        print(f"\n{tables[metric].title}\n")
        print(tables[metric].to_markdown())
    print(f"\nwrote {', '.join(str(p) for p in files[:4])}, {out / 'tables.md'} and {out / 'tables'}/")
    if args.report:
        from ..report import write_report

        written = write_report([out])
        print(f"report: {written.html}")
    if failed:
        print(f"noisyfer: {failed} run(s) failed; their logs are in {out / 'logs'}", file=sys.stderr)
        return 1
    return 0


def report(args) -> int:
    from ..report import write_report

    if args.top < 1:
        raise UserError(f"--top: expected at least 1, got {args.top}")
    written = write_report(args.paths, out=args.out, features=not args.no_features, checkpoint=args.checkpoint,
                           device=args.device, top=args.top, tsne_samples=args.tsne_samples)
    for path in written.results:
        if path.name in ("results.csv", "aggregate.csv", "tables.md"):
            print(f"wrote {path}")
    print(f"wrote {written.markdown}")
    print(written.html)
    return 0


def suspects(args) -> int:
    from ..report import export_suspects
    from .tables import markdown_table

    if args.cv is not None:
        from ..sweep.crossval import run_crossval

        if not args.items:
            raise UserError("suspects --cv K: give the train settings ([CONFIG.yaml] key=value ...)")
        source = Path(args.cv_dir or f"runs/cv{args.cv}")
        devices = tuple(d.strip() for d in args.device.split(",") if d.strip()) if args.device else ()
        try:
            counts = run_crossval(args.items, source, k=args.cv, fold_seed=args.fold_seed, jobs=args.jobs,
                                  devices=devices)
        except KeyboardInterrupt:
            print(f"noisyfer: interrupted; run the same command again to continue ({source})", file=sys.stderr)
            return 130
        if counts.get("failed"):
            print(f"noisyfer: {counts['failed']} fold run(s) failed; their logs are in {source / 'logs'}",
                  file=sys.stderr)
            return 1
        device = None
    else:
        if len(args.items) != 1 or "=" in args.items[0]:
            raise UserError("suspects: give one run or cross-validation directory (train settings need --cv K)")
        source, device = Path(args.items[0]), args.device
    result = export_suspects(source, top=args.top, out=args.out, checkpoint=args.checkpoint, device=device,
                             score=args.score, probs_file=args.probs, clean_out=args.clean_out, clean=args.clean)
    est, names = result.estimates, result.class_names
    print(f"probabilities: {result.origin}; score: {result.score}")
    print(f"estimated label issues (cleanlab): {est.num_issues} of {est.issues.size} "
          f"(estimated noise rate {100 * est.noise_rate:.1f} %)")
    if result.origin.startswith("in-sample"):
        print("  (in-sample probabilities: a model that memorised a wrong label predicts it, so this "
              "underestimates; use --cv K)")
    print("\nestimated noise transition matrix P(given | true), rows = true class\n")
    print(markdown_table(["true \\ given", *names],
                         [[names[j], *(f"{v:.2f}" for v in est.transition[j])] for j in range(len(names))]))
    if result.rows:
        keys = [k for k in ("rank", "index", "given_class", "suggested_class", "score", "mislabeled")
                if k in result.rows[0]]
        print()
        print(markdown_table(keys, [[r[k] for k in keys] for r in result.rows[:10]]))
        if len(result.rows) > 10:
            print(f"... {len(result.rows) - 10} more in the CSV")
    else:
        print("\nno sample listed (cleanlab estimates no label issue; --top N lists N anyway)")
    if result.base_rate is not None:
        if result.precision is not None:
            print(f"\nprecision against the true flips ({result.reference}): {result.precision:.4f} "
                  f"({int(round(result.precision * len(result.rows)))} of {len(result.rows)} truly mislabeled; "
                  f"{100 * result.base_rate:.1f} % of all training labels are wrong)")
        if result.recall is not None:
            print(f"recall: {result.recall:.4f} of the truly mislabeled samples are listed")
        if result.suggestion_accuracy is not None:
            print(f"suggested label = true label for {100 * result.suggestion_accuracy:.1f} % of the truly "
                  "mislabeled ones")
    else:
        print("\nprecision n/a: the true labels of this dataset are unknown")
    drawn = "" if result.grid is None else (
        f", {result.grid} ({result.drawn} faces" + (f": the first {result.drawn} of {len(result.rows)})"
                                                    if result.drawn < len(result.rows) else ")"))
    print(f"wrote {result.csv} ({len(result.rows)} samples){drawn} and {result.summary}")
    if result.clean_out is not None:
        print(f"wrote the cleaned dataset ({args.clean}) to {result.clean_out}; train on it with "
              f"data=noisyfer data.root={result.clean_out} noise.kind=none"
              + (f" (or noise.file={result.clean_out / 'relabel.csv'} with the original data)"
                 if args.clean == "relabel" else ""))
    return 0
