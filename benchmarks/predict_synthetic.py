"""How face detection changes a model's accuracy on the simulator's test faces.

Usage::

    .venv/bin/python benchmarks/predict_synthetic.py RUN_DIR [--upscale 2] [--detectors none mtcnn haar]

RUN_DIR is a run trained on ``data=synthetic``; its test split is regenerated from the run's
configuration (the simulator's cache). Each test image is upscaled ``--upscale`` times (bicubic) and
given to ``Recognizer.predict`` with each detector (largest face): with ``none`` the original image
is the face, as in evaluation; with ``mtcnn`` / ``haar`` the face must be found, then aligned to the
bundle's template (``rafdb``) at the model's input size. Prints the faces found and the accuracy
against the simulator's true labels, over the faces found and over all images (a missed face counts
as wrong).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from noisyfer.config import load_yaml, resolve_config
from noisyfer.data.datasets import create_dataset
from noisyfer.engine.rundir import RunDirectory
from noisyfer.inference.recognizer import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--upscale", type=float, default=2.0)
    parser.add_argument("--detectors", nargs="+", default=["none", "mtcnn", "haar"])
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    args = parser.parse_args()
    tree = load_yaml(RunDirectory.existing(args.run_dir).config)
    tree["resume"] = None
    cfg = resolve_config(tree)
    test = create_dataset(cfg.data, cfg.data_options)["test"]
    images = np.asarray(test.images[: args.limit])
    truth = np.asarray(test.columns.get("true_label", test.labels))[: len(images)]
    side = int(round(images.shape[1] * args.upscale))
    big = [cv2.resize(np.ascontiguousarray(im), (side, side), interpolation=cv2.INTER_CUBIC) for im in images]
    print(f"{len(images)} simulated test faces of {images.shape[1]} px, upscaled to {side} px")
    for name in args.detectors:
        rec = load(args.run_dir, detector=name, device="cpu")
        predictions = []
        inputs = list(images) if name == "none" else big  # none: the images as evaluated
        for start in range(0, len(inputs), 32):
            predictions += rec.predict_many(inputs[start:start + 32], largest=True)
        found = np.array([bool(p) for p in predictions])
        labels = np.array([p[0].label_index if p else -1 for p in predictions])
        correct = labels == truth
        on_found = correct[found].mean() if found.any() else float("nan")
        print(f"{name:>6}: faces found {found.sum()}/{len(images)} ({found.mean():.1%}); accuracy on found faces "
              f"{on_found:.4f}; over all images (missed = wrong) {correct.mean():.4f}")


if __name__ == "__main__":
    main()
