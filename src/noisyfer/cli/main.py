"""``noisyfer`` command line: a thin layer over the Python API.

Every user error (unknown method, key or dataset, wrong value type, rate outside [0, 1), missing
path) is printed as one line naming the problem, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import NoisyferError, UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from . import commands
    from .inference import add_parsers as add_inference_parsers
    from .prepare import add_parser as add_prepare_parser
    from .reporting import add_parsers

    parser = _Parser(prog="noisyfer", description="Facial expression recognition under noisy labels.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate a simulated FER dataset (and a preview grid)")
    p.add_argument("--out", help="dataset directory to write (noisyfer format)")
    p.add_argument("--num-train", type=int, default=10000)
    p.add_argument("--num-test", type=int, default=2000)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (32-224)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=int, choices=(7, 8), default=7)
    p.add_argument("--ambiguity", type=float, default=0.3, help="share of faces blending two expressions")
    p.add_argument("--class-counts", default="rafdb", help="rafdb (imbalanced like RAF-DB) or balanced")
    p.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    p.add_argument("--preview", nargs="?", const="", default=None, metavar="PNG",
                   help="write a labelled grid (default OUT/preview.png, or ./synth_preview.png without --out)")
    p.set_defaults(func=commands.synth)

    p = sub.add_parser("noise", help="write a noisy training-label file for a dataset directory")
    p.add_argument("--kind", required=True, help="symmetric, uniform, asymmetric, instance or crowd")
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", required=True, help="dataset directory in noisyfer format")
    p.add_argument("--out", required=True, help="label file to write (CSV; a .json sidecar is written beside it)")
    p.add_argument("--exact", action="store_true", help="exact per-class counts instead of Bernoulli draws")
    p.add_argument("--pairs", help="asymmetric pairs as JSON, e.g. '{\"fear\": \"surprise\"}'")
    p.add_argument("--probs", help="instance noise: .npy (N, C) class probabilities (e.g. a model's predictions)")
    p.set_defaults(func=commands.noise)

    p = sub.add_parser("train", help="train a method: noisyfer train [CONFIG.yaml] key=value ...")
    p.add_argument("items", nargs="*", metavar="ARG", help="an optional YAML config file, then key=value overrides")
    p.set_defaults(func=commands.train)

    p = sub.add_parser("eval", help="evaluate a run's checkpoint on a split")
    p.add_argument("run_dir")
    p.add_argument("--checkpoint", default="best", help="best, last, or a checkpoint file")
    p.add_argument("--split", default="test")
    p.add_argument("--device", default=None)
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser("list", help="list the registered methods, backbones and datasets")
    p.set_defaults(func=commands.list_components)

    p = sub.add_parser("demo", help="simulated data, 30%% symmetric noise, a few CPU minutes of training")
    p.add_argument("--out", default="runs")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=commands.demo)

    add_parsers(sub, _Parser)
    add_inference_parsers(sub, _Parser)
    add_prepare_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        if not argv or argv[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        args = parser.parse_args(argv)
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe is then reported here, not at interpreter exit
        return status
    except BrokenPipeError:
        # the reader went away (`noisyfer sweep ... --dry-run | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UserError as exc:
        print(f"noisyfer: error: {exc}", file=sys.stderr)
        return 2
    except NoisyferError as exc:
        print(f"noisyfer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("noisyfer: interrupted; a training run resumes with `noisyfer train resume=RUN_DIR`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
