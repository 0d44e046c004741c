"""``noisyfer export`` and ``noisyfer predict``: use a trained model outside training."""

from __future__ import annotations

import sys


def add_parsers(sub, parser_class) -> None:
    p = sub.add_parser("export", help="write a run's model as a self-describing bundle, ONNX or TorchScript")
    p.add_argument("model", metavar="RUN_DIR", help="run directory (or a bundle to convert)")
    p.add_argument("--out", required=True, help="file to write (.pt bundle, .onnx, .ts)")
    p.add_argument("--format", choices=("bundle", "onnx", "torchscript"), default=None,
                   help="default: from the suffix of --out (.onnx, .ts/.torchscript, else bundle)")
    p.add_argument("--checkpoint", default="best", help="best, last, or a checkpoint file")
    p.add_argument("--template", default=None, help="alignment template of the training images (default rafdb)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.set_defaults(func=export)

    p = sub.add_parser("predict", help="expression of every face in images, folders, globs and videos")
    p.add_argument("model", metavar="MODEL", help="run directory or bundle written by `noisyfer export`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders (recursive), glob patterns, videos")
    p.add_argument("--out", required=True, help="predictions table: .csv or .jsonl")
    p.add_argument("--detector", default="mtcnn", help="mtcnn (boxes + landmarks), haar, or none (aligned crops)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--min-face-size", type=float, default=None,
                   help="mtcnn/haar: smallest face side searched, in pixels (default 20)")
    p.add_argument("--batch-size", type=int, default=64, help="faces per classifier forward")
    p.add_argument("--largest", action="store_true", help="only the largest face of each image or frame")
    p.add_argument("--every", type=int, default=1, help="videos: process one frame in N")
    p.add_argument("--smooth", type=float, default=0.0, metavar="F",
                   help="videos: moving average of each face's probabilities, s = F s_prev + (1 - F) p (0 = off)")
    p.add_argument("--annotate", metavar="DIR", help="write the images and videos with boxes and labels drawn here")
    p.add_argument("--on-bad", choices=("error", "skip"), default="error",
                   help="an unreadable file: stop with an error, or write a row saying why and go on")
    p.add_argument("--template", default=None, help="alignment template (default: the model's)")
    p.add_argument("--checkpoint", default="best", help="run directory: best, last, or a checkpoint file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=predict)


def export(args) -> int:
    from ..inference.export import ONNX_OPSET, export as export_model

    opset = args.opset or ONNX_OPSET
    path, bundle = export_model(args.model, args.out, format=args.format, checkpoint=args.checkpoint,
                                template=args.template, opset=opset)
    m = bundle.metadata
    summary = m["summary"]
    acc = summary.get("accuracy_best")
    fmt = args.format or path.suffix
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {m['method']} on {m['backbone']}, "
          f"{len(m['class_names'])} classes, input {m['image_size']}x{m['image_size']}, template {m['template']}"
          + (f", test accuracy {acc:.4f} (best epoch {summary.get('best_epoch')})" if acc is not None else ""))
    if m["left_out"]:
        print(f"left out {len(m['left_out'])} tensors that prediction does not read (training-only heads, "
              f"per-sample state)")
    if str(fmt).lower() in ("onnx", ".onnx"):
        from ..inference.export import onnx_parity

        diff = onnx_parity(path, bundle)
        if diff is not None:
            print(f"onnxruntime check (opset {opset}): max |logit difference| vs PyTorch = {diff:.2e}")
    return 0


def predict(args) -> int:
    from ..errors import UserError
    from ..inference.predict import predict_files
    from ..inference.recognizer import load
    from ..inference.rows import RowWriter, empty_row
    from ..inference.sources import expand_inputs

    sources, ignored, missing = expand_inputs(args.inputs)
    if missing and args.on_bad == "error":
        raise UserError(f"input not found: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                              else ""))
    if not sources and not missing:
        raise UserError(f"no image or video found in {' '.join(args.inputs)}")
    detector_options = {"min_face_size": args.min_face_size} if args.min_face_size is not None else None
    if detector_options and args.detector == "none":
        raise UserError("--min-face-size: detector 'none' searches no faces")
    recognizer = load(args.model, detector=args.detector, device=args.device, batch_size=args.batch_size,
                      checkpoint=args.checkpoint, template=args.template, detector_options=detector_options)
    with RowWriter(args.out, recognizer.class_names) as writer:
        for item in missing:  # --on-bad skip
            writer.write(empty_row(item, "error", error=f"{item}: input not found"))
        stats = predict_files(recognizer, sources, writer, annotate=args.annotate, every=args.every,
                              smooth=args.smooth, largest=args.largest, on_bad=args.on_bad,
                              progress=not args.quiet and sys.stderr.isatty())
    errors = len(stats.errors) + len(missing)
    parts = [f"{stats.images} images", f"{stats.frames} video frames", f"{stats.faces} faces",
             f"{stats.without_face} images/frames without a face", f"{errors} unreadable"]
    print(f"{', '.join(parts)} -> {args.out}")
    if ignored:
        print(f"ignored {len(ignored)} files that are neither images nor videos by suffix (e.g. {ignored[0]})")
    if stats.annotated:
        print(f"annotated: {len(stats.annotated)} files in {args.annotate}")
    return 0
