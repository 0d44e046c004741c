"""Face detectors behind one interface, registered by name (``mtcnn``, ``haar``, ``none``).

::

    detector = create_detector("mtcnn", device="auto", min_face_size=20)
    faces = detector.detect([image_a, image_b])     # one list of Face per image, largest first

Images are HxWx3 uint8 RGB arrays of any sizes (:func:`noisyfer.faces.read_image` reads a file).
"""

from __future__ import annotations

import abc

from typing import Sequence

import numpy as np

from ..errors import UserError
from ..registry import Registry
from .face import Face

DETECTORS = Registry("face detector")
register_detector = DETECTORS.register


class FaceDetector(abc.ABC):
    """Base class: :meth:`detect` finds the faces of a batch of images."""

    name: str = ""

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of each image (HxWx3 uint8 RGB), sorted by decreasing box area."""

    def detect_one(self, image: np.ndarray) -> list[Face]:
        """Faces of one image."""
        return self.detect([image])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The images as a list, each checked to be HxWx3 uint8 (else a :class:`UserError`)."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise UserError("detect() takes a sequence of images; wrap a single image in a list")
    out = []
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise UserError(f"image {i}: expected an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
        out.append(np.ascontiguousarray(image))
    return out


@register_detector("none")
class WholeImage(FaceDetector):
    """No detection: each image is one already-aligned face (RAF-DB aligned, FER2013's 48x48)."""

    name = "none"

    def __init__(self, *, device: str = "auto"):
        del device  # nothing runs on a device

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [[Face(box=np.array([0, 0, image.shape[1], image.shape[0]]), score=1.0, landmarks=None)]
                for image in check_images(images)]


def create_detector(name: str, *, device: str = "auto", **options) -> FaceDetector:
    """The detector registered as ``name`` with its keyword options.

    Parameters
    ----------
    name
        ``mtcnn`` (boxes and five landmarks), ``haar`` (OpenCV's frontal-face cascade, boxes only) or
        ``none`` (each image is a face).
    device
        ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``; used by ``mtcnn``.
    **options
        The detector's own options (see each class); an unknown one is a :class:`UserError`.
    """
    _load_builtin()
    entry = DETECTORS.get(name)
    try:
        return entry.obj(device=device, **options)
    except TypeError as exc:
        import inspect

        known = [p for p in inspect.signature(entry.obj).parameters if p != "device"]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise UserError(f"face detector '{name}': unknown option(s) {', '.join(unknown)}; "
                            f"options: {', '.join(known) or 'none'}") from None
        raise


def _load_builtin() -> None:
    from . import haar, mtcnn  # noqa: F401  (registration side effects)


def detector_names() -> list[str]:
    """Registered detector names."""
    _load_builtin()
    return DETECTORS.names()


