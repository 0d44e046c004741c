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
    p.add_argument("--jobs", type=int, default=1, help="runs trained at the same time (default 1)")
    p.add_argument("--shard", help="I/N: run only the I-th of N disjoint parts of the grid (several machines)")
    p.add_argument("--device", help="device per job slot, comma-separated and used in turn (e.g. cuda:0,cuda:1)")
    p.add_argument("--collect", action="store_true", help="train nothing: only collect results and write tables")
    p.add_argument("--dry-run", action="store_true", help="print what would run, train nothing")
    p.add_argument("--report", action="store_true", help="also write OUT/report.html when done")
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

    p = subparsers.add_parser("suspects", help="export the training samples most likely mislabeled (CSV + grid)")
    p.add_argument("run_dir", help="the run directory whose training samples are ranked")
    p.add_argument("--top", type=int, default=50,
                   help="number of samples to list (default 50); the grid draws up to 200 of them")
    p.add_argument("--out", help="CSV file (default RUN_DIR/suspects.csv; the grid is the same name .png)")
    p.add_argument("--checkpoint", default="best", help="best, last or a checkpoint file")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the run's device)")
    p.set_defaults(func=suspects)


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
    if not args.collect:
        devices = tuple(d.strip() for d in args.device.split(",") if d.strip()) if args.device else ()
        try:
            counts = run_sweep(spec, out, jobs=args.jobs, shard=parse_shard(args.shard), devices=devices,
                               dry_run=args.dry_run)
        except KeyboardInterrupt:
            print(f"noisyfer: sweep interrupted; run the same command again to continue ({out})", file=sys.stderr)
            return 130
        if args.dry_run:
            if counts.get("refused"):
                raise UserError(f"sweep: {counts['refused']} of {counts['refused'] + counts['planned']} points would "
                                "be refused (listed above); fix them before running")
            return 0
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

    result = export_suspects(args.run_dir, top=args.top, out=args.out, checkpoint=args.checkpoint, device=args.device)
    keys = [k for k in ("rank", "index", "given_class", "suggested_class", "score", "mislabeled")
            if k in result.rows[0]]
    print(markdown_table(keys, [[r[k] for k in keys] for r in result.rows[:10]]))
    if len(result.rows) > 10:
        print(f"... {len(result.rows) - 10} more in the CSV")
    if result.precision is not None:
        print(f"\nprecision against the true flips ({result.reference}): {result.precision:.4f} "
              f"({int(round(result.precision * len(result.rows)))} of {len(result.rows)} truly mislabeled; "
              f"{100 * result.base_rate:.1f} % of all training labels are wrong)")
        if result.suggestion_accuracy is not None:
            print(f"suggested label = true label for {100 * result.suggestion_accuracy:.1f} % of the truly "
                  "mislabeled ones")
    else:
        print("\nprecision n/a: the true labels of this dataset are unknown")
    print(f"wrote {result.csv} ({len(result.rows)} samples) and {result.grid} ({result.drawn} faces"
          + (f": the first {result.drawn} of {len(result.rows)})" if result.drawn < len(result.rows) else ")"))
    return 0
