"""``noisyfer`` command line: a thin layer over the Python API.

Conventions every command follows (and a new command, e.g. in its own ``cli/<name>.py`` with an
``add_parsers(subparsers)`` called from :func:`build_parser`, must follow):

* every argument and option has ``help=`` text (a test walks the parser);
* the module that builds the parser imports nothing heavy at import time: torch, numpy, matplotlib and
  noisyfer's engine are imported inside the command function, so ``noisyfer --help``, ``COMMAND --help``
  and argument errors answer without importing torch (a test checks ``sys.modules``);
* an output path is ``--out``; user errors raise :class:`~noisyfer.errors.UserError` (one line, exit 2);
* a command taking ``key=value`` items declares ``set_defaults(trailing="DEST")`` so that items after the
  options still land in ``DEST``.

Every user error (unknown method, key or dataset, wrong value type, rate outside [0, 1), missing
path) and every refusal of the file system (read-only or full disk, a file-size limit, a path that is
not a directory) is printed as one line naming the key or the path, with exit status 2 and no
traceback. A diverged run exits with 1; Ctrl-C with 130, naming the run directory that resumes.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from ..errors import NoisyferError, RunInterrupted, UserError

#: errno values of a failed write (the message then says "cannot write").
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from . import commands
    from .describe import config_sections_help
    from .inference import add_parsers as add_inference_parsers
    from .prepare import add_parser as add_prepare_parser
    from .reporting import add_parsers

    parser = _Parser(prog="noisyfer", description="Facial expression recognition under noisy labels.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate a simulated FER dataset (and a preview grid)")
    p.add_argument("--out", help="dataset directory to write (noisyfer format): new, empty, or a dataset with --force")
    p.add_argument("--force", action="store_true", help="replace the noisyfer dataset already in --out")
    p.add_argument("--num-train", type=int, default=10000, help="training images (default 10000)")
    p.add_argument("--num-test", type=int, default=2000, help="test images (default 2000)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (32-224)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed: the same seed draws the same faces (default 0)")
    p.add_argument("--classes", type=int, choices=(7, 8), default=7,
                   help="7 basic expressions, or 8 with contempt (default 7)")
    p.add_argument("--ambiguity", type=float, default=0.3, help="share of faces blending two expressions")
    p.add_argument("--class-counts", default="rafdb", help="rafdb (imbalanced like RAF-DB) or balanced")
    p.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    p.add_argument("--preview", nargs="?", const="", default=None, metavar="PNG",
                   help="write a labelled grid (default OUT/preview.png, or ./synth_preview.png without --out)")
    p.set_defaults(func=commands.synth)

    p = sub.add_parser("noise", help="write a noisy training-label file for a dataset directory")
    p.add_argument("--kind", required=True, help="symmetric, uniform, asymmetric, instance or crowd")
    p.add_argument("--rate", type=float, default=0.0, help="share of training labels to change, in [0, 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draw (default 0)")
    p.add_argument("--data", required=True, help="dataset directory in noisyfer format")
    p.add_argument("--out", required=True, help="label file to write (CSV; a .json sidecar is written beside it)")
    p.add_argument("--exact", action="store_true", help="exact per-class counts instead of Bernoulli draws")
    p.add_argument("--pairs", help="asymmetric pairs as JSON, e.g. '{\"fear\": \"surprise\"}'")
    p.add_argument("--probs", help="instance noise: .npy (N, C) class probabilities (e.g. a model's predictions)")
    p.set_defaults(func=commands.noise)

    p = sub.add_parser("train", help="train a method: noisyfer train [CONFIG] key=value ...",
                       description="Train one run. CONFIG is a YAML file, or the name of a shipped config "
                                   "(noisyfer list --configs); key=value settings override it.",
                       epilog=config_sections_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="*", metavar="ARG",
                   help="an optional config (YAML file or shipped config name), then key=value settings")
    p.add_argument("--out", help="folder the run directory is created in (the same as out=DIR; default runs)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (YAML, every key) and exit without training")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="N data-parallel processes on this machine, one per GPU (torchrun --standalone "
                        "--nproc_per_node N); the batch size stays the global one")
    p.set_defaults(func=commands.train, trailing="items")

    p = sub.add_parser("eval", help="evaluate a run's checkpoint on a split, or on another dataset",
                       description="Score a run's weights on its own test or train split, or (with --data or "
                                   "data.* settings) on another dataset with the same classes, matched by name.")
    p.add_argument("run_dir", help="the run directory (holds config.yaml and the checkpoints)")
    p.add_argument("settings", nargs="*", metavar="data.KEY=VALUE",
                   help="data settings of another dataset to score on (e.g. data.root=DIR data.image_size=100)")
    p.add_argument("--checkpoint", default="best", help="best, last, or a checkpoint file")
    p.add_argument("--split", default="test", help="test (default) or train (scored against the given labels)")
    p.add_argument("--data", help="score on this dataset instead of the run's (rafdb, folder, csv, ...; with "
                                  "--data.root DIR or data.root=DIR)")
    p.add_argument("--data.root", dest="data_root", metavar="DIR", help="root folder of the --data dataset")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the run's device)")
    p.add_argument("--allow-data-change", action="store_true",
                   help="evaluate even if the split differs from the data the run was trained on (warns)")
    p.set_defaults(func=commands.evaluate, trailing="settings")

    p = sub.add_parser("list", help="list the methods, backbones and datasets; or the options of one",
                       description="Without NAME: every registered method, backbone and dataset. With NAME (a "
                                   "method, dataset, backbone or config section such as train): its options with "
                                   "types, defaults and what they do.")
    p.add_argument("name", nargs="?", metavar="NAME", help="a method, dataset, backbone or config section")
    p.add_argument("--options", action="store_true", help="with no NAME: the options of every method")
    p.add_argument("--configs", action="store_true", help="the shipped configs (usable by name: noisyfer train ce_sim)")
    p.set_defaults(func=commands.list_components)

    p = sub.add_parser("demo", help="simulated data, 30%% symmetric noise, a few CPU minutes of training")
    p.add_argument("--out", default="runs", help="folder the run directory is created in (default runs)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 12)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
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
        args, extra = parser.parse_known_args(argv)
        trailing = getattr(args, "trailing", None)  # key=value items may also follow the options
        if extra and trailing and all("=" in item and not item.startswith("-") for item in extra):
            setattr(args, trailing, [*getattr(args, trailing), *extra])
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
    except OSError as exc:  # the file system refused (read-only, full, not a directory): one line naming the path
        from ..fileio import describe_os_error

        action = "write" if exc.errno in _WRITE_ERRNOS else "access"
        print(f"noisyfer: error: {describe_os_error(exc, action=action)}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        print(f"noisyfer: interrupted; the run resumes with: noisyfer train resume={exc.run_dir}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("noisyfer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
