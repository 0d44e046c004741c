"""Speed of ``noisyfer predict``'s stages: classifier vs model-only ceiling, MTCNN per frame, video end to end.

Usage::

    .venv/bin/python benchmarks/bench_predict.py                       # resnet_small at 64 px, CPU or CUDA
    .venv/bin/python benchmarks/bench_predict.py --backbone resnet18 --size 100 --frames 48

Prints three ratios measured in one run (absolute figures depend on what else shares the cores):

1. classifier stage (``Recognizer.predict_aligned`` on uint8 HxWx3 crops: conversion, batching,
   softmax, copy back) in faces per second, against the model-only forward on ready NCHW tensors on
   the device (the ceiling); target >= 90 %.
2. MTCNN time per 640x480 frame (frames detected 8 at a time).
3. end-to-end frames per second of ``Recognizer.predict_video`` on an mp4 written here, against the
   sum of its stages measured alone (decode, detect, align, classify); target <= 1.1x.

The frames show scikit-image's astronaut portrait (when scikit-image is installed; else a simulated
face) moving over a 640x480 background, one face per frame.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method, resolve_device
from noisyfer.faces import align_faces, create_detector
from noisyfer.inference.model import InferenceModel
from noisyfer.inference.recognizer import Recognizer
from noisyfer.inference.video import read_frames
from noisyfer.models import create_backbone

CLASSES = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")


def build_recognizer(backbone: str, size: int, device: torch.device, batch_size: int, detector: str) -> Recognizer:
    torch.manual_seed(0)
    method = create_method("ce", backbone=create_backbone(backbone), num_classes=len(CLASSES), num_train=1,
                           options=_ce_options(), augment=Augmenter(AugmentConfig(), image_size=size),
                           image_size=size)
    config = AugmentConfig()
    model = InferenceModel(method, mean=config.mean, std=config.std, image_size=size)
    metadata = {"class_names": list(CLASSES), "image_size": size, "template": "rafdb", "method": "ce"}
    return Recognizer(model, metadata, detector=detector, device=str(device), batch_size=batch_size)


def _ce_options():
    from noisyfer.registry import METHODS

    return METHODS.get("ce").options()


def timed(fn, repeats: int) -> float:
    """Best of ``repeats`` wall-clock seconds of ``fn()`` (synchronised on CUDA)."""
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def face_image() -> np.ndarray:
    try:
        from noisyfer.faces.samples import astronaut_path
        from noisyfer.faces import read_image

        return read_image(astronaut_path())[:300, 100:400]
    except Exception:  # scikit-image missing: a simulated face, upscaled
        from noisyfer.data.synthetic import SynthConfig, generate

        face = generate(SynthConfig(num_train=8, num_test=0, image_size=64), workers=1)["train"].images[0]
        return np.kron(face, np.ones((4, 4, 1), dtype=np.uint8))


def make_frames(count: int) -> list[np.ndarray]:
    face = face_image()
    rng = np.random.default_rng(0)
    background = (rng.random((480, 640, 3)) * 40 + 90).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x, y = 40 + (i * 7) % 260, 60 + (i * 3) % 100
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet_small")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--faces", type=int, default=512, help="crops for the classifier stage")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=32, help="frames of the benchmark video")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_grad_enabled(False)
    rec = build_recognizer(args.backbone, args.size, device, args.batch_size, "mtcnn")
    print(f"device {device}, {torch.get_num_threads()} threads, {args.backbone} at {args.size} px, "
          f"batch {args.batch_size}")

    # 1. classifier stage vs model-only forward
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (args.faces, args.size, args.size, 3), dtype=np.uint8)
    ready = [torch.from_numpy(crops[i:i + args.batch_size]).permute(0, 3, 1, 2).contiguous().to(device)
             for i in range(0, args.faces, args.batch_size)]
    rec.predict_aligned(crops[: args.batch_size])  # warm-up

    def model_only():
        with torch.inference_mode():
            for batch in ready:
                rec.model(batch)

    ceiling = stage = float("inf")
    for i in range(args.repeats):  # interleaved, in alternating order, so that outside load hits both alike
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            if which == 0:
                ceiling = min(ceiling, timed(model_only, 1))
            else:
                stage = min(stage, timed(lambda: rec.predict_aligned(crops), 1))
    print(f"classifier stage: {args.faces / stage:.0f} faces/s; model-only forward {args.faces / ceiling:.0f} "
          f"faces/s; ratio {ceiling / stage:.1%} (target >= 90%)")

    # 2. MTCNN per 640x480 frame
    frames = make_frames(args.frames)
    detector = rec.detector
    detector.detect(frames[:8])  # warm-up
    detect_all = timed(lambda: [detector.detect(frames[i:i + 8]) for i in range(0, len(frames), 8)], args.repeats)
    found = sum(len(f) for f in detector.detect(frames[:8]))
    print(f"MTCNN: {1000 * detect_all / len(frames):.1f} ms per 640x480 frame (8 per call; {found} faces in 8 frames)")

    # 3. video end to end vs the sum of its stages alone
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        write_video(video, frames)
        decoded: list[np.ndarray] = []
        decode = timed(lambda: decoded.__setitem__(slice(None), [f for _, _, f in read_frames(video)]), args.repeats)
        faces: list = []
        detect = timed(lambda: faces.__setitem__(slice(None), [x for i in range(0, len(decoded), 8)
                                                                for x in detector.detect(decoded[i:i + 8])]),
                       args.repeats)
        aligned: list = []
        align = timed(lambda: aligned.__setitem__(slice(None), [align_faces(decoded, faces, size=args.size)]),
                      args.repeats)
        classify = timed(lambda: rec.predict_aligned(aligned[0]), args.repeats)
        stages = decode + detect + align + classify
        end_to_end = timed(lambda: list(rec.predict_video(video)), args.repeats)
    n = len(decoded)
    print(f"video ({n} frames 640x480, {sum(len(f) for f in faces)} faces): end to end {n / end_to_end:.1f} frames/s; "
          f"stages alone: decode {1000 * decode / n:.1f} + detect {1000 * detect / n:.1f} + align "
          f"{1000 * align / n:.2f} + classify {1000 * classify / n:.2f} ms/frame = {n / stages:.1f} frames/s; "
          f"end to end / sum of stages = {end_to_end / stages:.2f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
