"""The Python API of a trained model: faces in photos and videos -> expressions.

::

    import noisyfer
    rec = noisyfer.load("runs/ce-synthetic-symmetric0.3-s0")      # a run directory or an exported bundle
    for face in rec.predict("photo.jpg"):                         # path, PIL image or HxWx3 uint8 array
        print(face.box, face.label, face.probabilities)
    for frame in rec.predict_video("clip.mp4", every=2, smooth=0.6):
        print(frame.frame, frame.timestamp, [f.label for f in frame.faces])
    probs = rec.predict_aligned(crops)                            # (N, H, W, 3) uint8 aligned crops -> (N, C)

Detection, alignment and classification run in batches: :meth:`Recognizer.predict_many` detects
the faces of several images in one call, aligns them and classifies every face of the batch in
chunks of ``batch_size``.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..engine.build import resolve_device
from ..errors import UserError
from ..faces import Face, align_faces, as_rgb, create_detector
from .bundle import load_bundle
from .model import InferenceModel
from .results import FacePrediction, FrameResult
from .video import FaceTracks, read_frames


class Recognizer:
    """A trained model with a face detector: :meth:`predict`, :meth:`predict_video`, :meth:`predict_aligned`.

    Parameters
    ----------
    model
        The :class:`~noisyfer.inference.model.InferenceModel` (normalisation + the method's prediction).
    metadata
        The bundle's metadata (class names, input size, alignment template, run summary).
    detector
        ``mtcnn``, ``haar`` or ``none`` (each image is already an aligned face), or a detector object.
    device
        ``auto`` (CUDA when available), ``cpu``, ``cuda``...; for the model and the detector.
    batch_size
        Faces per classifier forward.
    template
        Alignment template (default: the one the bundle names).
    detector_options
        Keyword options of the detector (e.g. ``{"min_face_size": 40}`` for MTCNN).
    """

    def __init__(self, model: InferenceModel, metadata: dict, *, detector: Any = "mtcnn", device: str = "auto",
                 batch_size: int = 64, template: str | None = None, detector_options: dict | None = None):
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.metadata = metadata
        self.class_names: tuple[str, ...] = tuple(metadata["class_names"])
        self.image_size = int(metadata["image_size"])
        self.template = template or metadata.get("template", "rafdb")
        self.batch_size = int(batch_size)
        if isinstance(detector, str):
            detector = create_detector(detector, device=str(self.device), **(detector_options or {}))
        self.detector = detector

    def __repr__(self) -> str:
        return (f"Recognizer(method={self.metadata['method']!r}, classes={len(self.class_names)}, "
                f"size={self.image_size}, detector={self.detector.name!r}, device={str(self.device)!r})")

    # -- aligned crops -------------------------------------------------------------------------
    def predict_aligned(self, crops) -> np.ndarray:
        """Class probabilities (N, C) of aligned face crops.

        ``crops``: (N, H, W, 3) uint8 RGB array (or a list of HxWx3 arrays), or an (N, 3, H, W)
        tensor (uint8, or float in [0, 1]). Crops of another size than the model's are resized
        (antialiased bilinear, as the dataset readers do).
        """
        if isinstance(crops, torch.Tensor):
            if tuple(crops.shape[-2:]) == (self.image_size, self.image_size):
                return self._classify_tensor(crops)
            if crops.dtype != torch.uint8:
                raise UserError(f"float crops must be {self.image_size}x{self.image_size}, got {tuple(crops.shape)}")
            crops = crops.permute(0, 2, 3, 1).cpu().numpy()  # resized below
        array = np.stack([as_rgb(c) for c in crops]) if isinstance(crops, (list, tuple)) else np.asarray(crops)
        if array.ndim != 4 or array.shape[3] != 3 or array.dtype != np.uint8:
            raise UserError(f"crops must be an (N, H, W, 3) uint8 RGB array, got {array.dtype} {array.shape}")
        from ..data.datasets import resize_images

        return self._classify(resize_images(array, self.image_size))

    def _classify(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) of (N, size, size, 3) uint8 crops, ``batch_size`` at a time."""
        if len(crops) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        tensor = torch.from_numpy(np.require(crops, requirements=["C", "W"]))  # read-only memmaps are copied
        return self._classify_tensor(tensor.permute(0, 3, 1, 2))

    @torch.inference_mode()
    def _classify_tensor(self, images: torch.Tensor) -> np.ndarray:
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start:start + self.batch_size].to(self.device, non_blocking=True).contiguous()
            out.append(self.model.probabilities(chunk))
        if not out:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        return torch.cat(out).cpu().numpy()

    # -- whole images --------------------------------------------------------------------------
    def detect(self, images: Sequence[np.ndarray], *, largest: bool = False) -> list[list[Face]]:
        faces = self.detector.detect(images)
        return [f[:1] for f in faces] if largest else faces

    def predict_many(self, images: Sequence, *, largest: bool = False) -> list[list[FacePrediction]]:
        """The faces of several images (paths, PIL images or HxWx3 uint8 arrays), detected in one batch."""
        arrays = [as_rgb(image) for image in images]
        faces = self.detect(arrays, largest=largest)
        return self.classify_faces(arrays, faces)

    def classify_faces(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> list[list[FacePrediction]]:
        """Align and classify given detections (one list of faces per image)."""
        crops = align_faces(images, faces, size=self.image_size, template=self.template)
        probs = self._classify(crops)
        out, row = [], 0
        for faces_of_image in faces:
            out.append([FacePrediction(index=i, box=f.box, score=f.score, landmarks=f.landmarks,
                                       probabilities=probs[row + i], class_names=self.class_names)
                        for i, f in enumerate(faces_of_image)])
            row += len(faces_of_image)
        return out

    def predict(self, image, *, largest: bool = False) -> list[FacePrediction]:
        """The faces of one image (a path, PIL image or HxWx3 uint8 RGB array), largest first.

        An image without a face gives an empty list.
        """
        return self.predict_many([image], largest=largest)[0]

    # -- videos --------------------------------------------------------------------------------
    def predict_video(self, path: str | os.PathLike, *, every: int = 1, smooth: float = 0.0, largest: bool = False,
                      batch_frames: int = 8, keep_frames: bool = False) -> Iterator[FrameResult]:
        """Per-frame results of a video: frames 0, every, 2 * every, ... .

        Parameters
        ----------
        every
            Process one frame in ``every``.
        smooth
            Exponential moving average of each face's probabilities over the processed frames,
            ``s_t = smooth * s_{t-1} + (1 - smooth) * p_t`` (faces followed by box overlap, see
            :class:`~noisyfer.inference.video.FaceTracks`); 0 = no smoothing.
        largest
            Only the largest face of each frame.
        batch_frames
            Frames detected and classified together.
        keep_frames
            Attach each frame's image to its result (for drawing).
        """
        tracks = FaceTracks(factor=smooth)
        pending: list[tuple[int, float, np.ndarray]] = []
        for item in read_frames(path, every=every):
            pending.append(item)
            if len(pending) == batch_frames:
                yield from self._video_batch(pending, tracks, largest, keep_frames)
                pending = []
        if pending:
            yield from self._video_batch(pending, tracks, largest, keep_frames)

    def _video_batch(self, frames, tracks: FaceTracks, largest: bool, keep_frames: bool) -> Iterator[FrameResult]:
        images = [image for _, _, image in frames]
        predictions = self.classify_faces(images, self.detect(images, largest=largest))
        for (index, timestamp, image), faces in zip(frames, predictions):
            ids, smoothed = tracks.update(np.array([f.box for f in faces]).reshape(-1, 4),
                                          np.array([f.probabilities for f in faces]).reshape(len(faces), -1))
            for face, track, probs in zip(faces, ids, smoothed):
                face.track, face.probabilities = track, probs
            yield FrameResult(frame=index, timestamp=timestamp, faces=faces, image=image if keep_frames else None)


def load(source: str | os.PathLike, *, detector: Any = "mtcnn", device: str = "auto", batch_size: int = 64,
         checkpoint: str = "best", template: str | None = None, detector_options: dict | None = None) -> Recognizer:
    """A :class:`Recognizer` of a run directory or a bundle written by ``noisyfer export``.

    Parameters
    ----------
    source
        Run directory (its ``best_model.pt``, ``config.yaml`` and ``summary.json``; the training data
        need not be present) or bundle file.
    detector, device, batch_size, template, detector_options
        See :class:`Recognizer`.
    checkpoint
        For a run directory: ``best``, ``last`` or a checkpoint file.
    """
    bundle = load_bundle(source, checkpoint=checkpoint)
    return Recognizer(bundle.build(), bundle.metadata, detector=detector, device=device, batch_size=batch_size,
                      template=template, detector_options=detector_options)
