"""Face detection on real photographs: detection rates (LFW subset), simulated faces found, time per frame.

Usage::

    .venv/bin/python benchmarks/bench_faces.py                  # all figures (about a minute on 2 CPU cores)
    .venv/bin/python benchmarks/bench_faces.py --device cuda --repeats 20

Needs scikit-image (installed by ``make setup``), whose data folder holds ``lfw_subset.npy`` (100 LFW
face crops and 100 non-face crops, 25 x 25) and ``astronaut.png``. The LFW crops are upscaled 4x
(bicubic) to 100 x 100, as they are (the face fills the crop) and with a 25-pixel replicated border
(the face inside a larger picture). Simulated faces: the simulator's test images (seed 0, the
aligned framing of FER datasets). Times are wall-clock on whatever else shares the machine: compare
figures of one run, not across machines.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from noisyfer.data.synthetic import SynthConfig, generate
from noisyfer.faces import ALIGN_TEMPLATES, create_detector, read_image
from noisyfer.faces.samples import astronaut_path, lfw_subset


def lfw_rates(detector, images: np.ndarray, is_face: np.ndarray) -> tuple[int, int]:
    found = np.array([len(f) > 0 for f in detector.detect(list(images))])
    return int(found[is_face].sum()), int(found[~is_face].sum())


def frame_640x480() -> np.ndarray:
    """The astronaut portrait (512 x 512) scaled into a 640 x 480 frame, borders replicated."""
    face = cv2.resize(read_image(astronaut_path()), (400, 400), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(face, 40, 40, 120, 120, cv2.BORDER_REPLICATE)


def seconds_per_call(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sim", type=int, default=500, help="simulated test faces")
    args = parser.parse_args()
    detectors = {"mtcnn": create_detector("mtcnn", device=args.device), "haar": create_detector("haar")}

    images, is_face = lfw_subset(upscale=4)
    padded = np.stack([cv2.copyMakeBorder(im, 25, 25, 25, 25, cv2.BORDER_REPLICATE) for im in images])
    print("| detector | LFW faces found (100x100) | non-faces flagged (100x100) | faces found (150x150, border) "
          "| non-faces flagged (border) |")
    print("|---|---|---|---|---|")
    for name, det in detectors.items():
        plain, border = lfw_rates(det, images, is_face), lfw_rates(det, padded, is_face)
        print(f"| {name} | {plain[0]}/100 | {plain[1]}/100 | {border[0]}/100 | {border[1]}/100 |")

    astronaut = read_image(astronaut_path())
    faces = detectors["mtcnn"].detect([astronaut])[0]
    f = faces[0]
    print(f"\nastronaut.png: {len(faces)} face(s) by mtcnn; largest box {np.round(f.box).astype(int).tolist()}, "
          f"score {f.score:.4f}; eyes y {f.landmarks[0, 1]:.0f}/{f.landmarks[1, 1]:.0f} < nose y "
          f"{f.landmarks[2, 1]:.0f} < mouth y {f.landmarks[3, 1]:.0f}/{f.landmarks[4, 1]:.0f}")

    print("\n| simulated test faces | mtcnn found | haar found |")
    print("|---|---|---|")
    deviation = {}
    for size in (64, 112):
        sim = generate(SynthConfig(num_train=1, num_test=args.sim, image_size=size, seed=0))["test"]
        found = {}
        for name, det in detectors.items():
            faces = det.detect(list(np.asarray(sim.images)))
            found[name] = sum(len(x) > 0 for x in faces)
            if name == "mtcnn":  # where the landmarks of the simulator's framing fall, against the template
                median = np.median(np.stack([x[0].landmarks for x in faces if x]) / size, axis=0)
                deviation[size] = float(np.abs(median - ALIGN_TEMPLATES["rafdb"]).max())
        print(f"| {args.sim} at {size}x{size} | {found['mtcnn']} ({found['mtcnn'] / args.sim:.0%}) "
              f"| {found['haar']} ({found['haar'] / args.sim:.0%}) |")
    print("\nMTCNN's median landmarks on simulated faces vs the rafdb template, largest coordinate difference "
          "(fraction of the side): " + ", ".join(f"{d:.3f} at {s}x{s}" for s, d in deviation.items()))

    frame = frame_640x480()
    batch = [frame] * 8
    print("\n| 640x480 frame | ms per frame |")
    print("|---|---|")
    for name, det in detectors.items():
        one = seconds_per_call(lambda: det.detect([frame]), args.repeats)
        eight = seconds_per_call(lambda: det.detect(batch), max(1, args.repeats // 2)) / len(batch)
        print(f"| {name}, one frame per call | {one * 1000:.0f} |")
        print(f"| {name}, 8 frames per call | {eight * 1000:.0f} |")


if __name__ == "__main__":
    main()
