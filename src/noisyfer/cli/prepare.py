"""The ``prepare`` subcommand: raw photos -> aligned face crops in noisyfer's dataset format."""

from __future__ import annotations

__all__ = ["add_parser", "prepare"]


def add_parser(subparsers) -> None:
    """Register ``noisyfer prepare`` on ``subparsers``."""
    p = subparsers.add_parser(
        "prepare", help="detect, align and crop your photos into a dataset for `noisyfer train data=noisyfer`",
        description="RAW is a folder of class folders (happy/, sad/, ...), a folder with train/ and test/ "
                    "class-folder trees, or a CSV file path,label. Every photo is detected and one face aligned; "
                    "OUT/prepare_log.jsonl says what happened to each photo.")
    p.add_argument("raw", metavar="RAW", help="folder of class folders, train/+test/ folders, or a path,label CSV")
    p.add_argument("--out", required=True, help="dataset directory to write: new, empty, or a dataset with --force")
    p.add_argument("--force", action="store_true", help="replace the noisyfer dataset already in --out")
    p.add_argument("--detector", default="mtcnn", help="mtcnn (default), haar, or none for photos that are face crops")
    p.add_argument("--size", type=int, default=112, help="side of the aligned crops in pixels (default 112)")
    p.add_argument("--template", default="rafdb", help="alignment template: rafdb (default) or arcface")
    p.add_argument("--multiple", choices=("largest", "skip"), default="largest",
                   help="photos with several faces: keep the largest (default) or leave the photo out")
    p.add_argument("--no-face", choices=("skip", "error"), default="skip",
                   help="photos without a face: leave out and log (default) or stop")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="share of each class drawn for the test split (default 0.2; not with train/ test/ folders)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test draw")
    p.add_argument("--on-bad", choices=("error", "skip"), default="error",
                   help="unreadable photos, bad CSV rows, non-class folders: stop (default) or skip and log")
    p.add_argument("--classes", type=int, choices=(7, 8), default=7, help="7 basic expressions, or 8 with contempt")
    p.add_argument("--min-face-size", type=float, default=None, help="smallest face searched, pixels (mtcnn, haar)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N for the detector")
    p.set_defaults(func=prepare)


def prepare(args) -> int:
    from ..faces.prepare import prepare as run_prepare

    options = {} if args.min_face_size is None else {"min_face_size": args.min_face_size}
    result = run_prepare(args.raw, args.out, detector=args.detector, size=args.size, template=args.template,
                         multiple=args.multiple, no_face=args.no_face, test_fraction=args.test_fraction,
                         seed=args.seed, on_bad=args.on_bad, classes=args.classes, device=args.device,
                         detector_options=options, force=args.force)
    print(result.summary())
    print(f"train with: noisyfer train data=noisyfer data.root={result.out}")
    return 0
