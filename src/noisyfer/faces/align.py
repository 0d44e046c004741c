"""Face alignment: a similarity transform from the five landmarks to a canonical template.

One implementation serves ``noisyfer predict``, ``noisyfer prepare`` and the Python API, so a model
sees faces framed the same way at training and at prediction time.

Templates (:data:`ALIGN_TEMPLATES`) give the five landmark positions (left eye, right eye, nose tip,
left and right mouth corner; "left" = image-left) as fractions of the square crop's side:

``arcface``
    The five-point template of face recognition (SphereFace / CosFace / ArcFace: eyes, nose and mouth
    corners of a 96 x 112 crop, centred in 112 x 112 by InsightFace), divided by 112. A tight crop:
    brows to just below the mouth.
``rafdb``
    The framing of RAF-DB's aligned 100 x 100 images, which RAF-DB does not publish as numbers: those
    crops show the whole face, the eyes at about 40 % of the height and the chin near the bottom
    edge (the framing noisyfer's simulator also uses: eyes at ~41 %, see
    ``noisyfer.data.synthetic.frame``). It keeps the shape of the ``arcface`` template (the average
    frontal face's eye distance, nose and mouth geometry) scaled about the crop centre by
    :data:`RAFDB_SCALE` and shifted so the eye line lies at :data:`RAFDB_EYE_LINE` of the height.

Faces without landmarks (Haar boxes, detector ``none``) are cropped to their box, made square and
framed as the template frames a face (:data:`BOX_FRAMING`); a box that covers the whole image (what
detector ``none`` returns) is the whole image resized to ``size`` x ``size`` exactly as the datasets
resize their images (antialiased bilinear), so predicting on aligned crops equals evaluating on them.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..data.datasets import resize_images
from ..errors import UserError
from .face import Face

#: InsightFace's 112 x 112 five-point template (pixels), the basis of both templates.
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)

#: ``rafdb``: scale of the arcface template about the crop centre, and height of the eye line.
RAFDB_SCALE = 0.8
RAFDB_EYE_LINE = 0.40


def _rafdb_template() -> np.ndarray:
    base = _ARCFACE_112 / 112.0
    points = (base - 0.5) * RAFDB_SCALE + 0.5
    points[:, 1] += RAFDB_EYE_LINE - points[:2, 1].mean()
    return points


#: Template name -> float32 (5, 2) landmark positions as fractions of the crop side.
ALIGN_TEMPLATES: dict[str, np.ndarray] = {
    "rafdb": _rafdb_template().astype(np.float32),
    "arcface": (_ARCFACE_112 / 112.0).astype(np.float32),
}

#: Template name -> how a landmark-less face box (Haar) is framed: (side of the crop in units of the
#: box's longer side, height of the box centre as a fraction of the crop). ``rafdb``: the median Haar
#: box on the simulator's test faces (seed 0, 112 px, framed like RAF-DB's aligned crops) has a side of
#: 0.74 of the crop and its centre at 0.46 of the height. ``arcface``: the same framing carried through
#: the relation between the two templates (x 0.8 about the centre, eye line moved).
BOX_FRAMING: dict[str, tuple[float, float]] = {"rafdb": (1.35, 0.46)}


def _arcface_framing(rafdb: tuple[float, float]) -> tuple[float, float]:
    eye_shift = RAFDB_EYE_LINE - ((_ARCFACE_112[:2, 1].mean() / 112.0 - 0.5) * RAFDB_SCALE + 0.5)
    enlarge, centre_y = rafdb
    return enlarge * RAFDB_SCALE, float((centre_y - 0.5 - eye_shift) / RAFDB_SCALE + 0.5)


BOX_FRAMING["arcface"] = _arcface_framing(BOX_FRAMING["rafdb"])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama's closed form (IEEE TPAMI 13(4), 1991): with centred point sets and the SVD
    ``U D V^T`` of their cross-covariance, the rotation is ``U S V^T`` (``S`` flips the last axis
    when needed so it is a rotation, not a reflection), the scale ``trace(D S) / var(src)``.

    Parameters
    ----------
    src, dst
        ``(N, 2)`` corresponding points, N >= 2.

    Returns
    -------
    np.ndarray
        float64 ``(2, 3)`` matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = (src_c ** 2).sum() / len(src)
    if var_src <= 0:
        raise ValueError("similarity_transform: the source points coincide")
    cov = dst_c.T @ src_c / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[-1] = -1.0
    rotation = u @ np.diag(s) @ vt
    scale = float((d * s).sum() / var_src)
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_dst - scale * rotation @ mu_src
    return matrix


def _template(name: str) -> np.ndarray:
    if name not in ALIGN_TEMPLATES:
        raise UserError(f"unknown alignment template '{name}'; available: {', '.join(ALIGN_TEMPLATES)}")
    return ALIGN_TEMPLATES[name].astype(np.float64)


def _whole_image(image_shape: Sequence[int], face: Face) -> bool:
    return [float(v) for v in face.box] == [0.0, 0.0, float(image_shape[1]), float(image_shape[0])]


def alignment_matrix(image_shape: Sequence[int], face: Face, *, size: int, template: str = "rafdb") -> np.ndarray:
    """The ``(2, 3)`` affine matrix :func:`align_face` warps with (image pixels -> crop pixels).

    Pixel coordinates are continuous (a pixel's centre is at +0.5), in the image and in the crop.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    points = _template(template)
    if face.landmarks is not None:
        return similarity_transform(face.landmarks, points * size)
    x1, y1, x2, y2 = (float(v) for v in face.box)
    if _whole_image(image_shape, face):
        return np.array([[size / width, 0.0, 0.0], [0.0, size / height, 0.0]])
    enlarge, centre_y = BOX_FRAMING[template]
    side = max(x2 - x1, y2 - y1) * enlarge
    if side <= 0:
        raise ValueError(f"empty face box {face.box.tolist()}")
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = size / side
    return np.array([[scale, 0.0, size / 2 - scale * cx], [0.0, scale, size * centre_y - scale * cy]])


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``image`` warped by ``matrix`` (continuous pixel coordinates) into a ``size`` x ``size`` crop.

    Bilinear sampling, borders replicated. A strong reduction is done in two steps (an area-averaged
    resize to at most twice the needed resolution first), so a large face is not aliased.
    """
    matrix = np.asarray(matrix, dtype=np.float64).copy()
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        factor = 2.0 * scale
        height, width = image.shape[:2]
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        fx, fy = small[0] / width, small[1] / height
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        matrix[:, 0] /= fx
        matrix[:, 1] /= fy
    # OpenCV's warp maps integer pixel indices (centres at integers): shift both sides by half a pixel
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(np.ascontiguousarray(image), shifted, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def align_face(image: np.ndarray, face: Face, *, size: int, template: str = "rafdb") -> np.ndarray:
    """The face cropped and aligned to ``template`` as a ``size`` x ``size`` x 3 uint8 image.

    Parameters
    ----------
    image
        HxWx3 uint8 RGB image the face was detected in.
    face
        A detection; with landmarks, the similarity transform (:func:`similarity_transform`) that
        brings them onto the template; without, its box (see the module docstring).
    size
        Side of the crop in pixels (the model's input size).
    template
        A name of :data:`ALIGN_TEMPLATES`.
    """
    if size < 1:
        raise UserError(f"alignment size must be a positive number of pixels, got {size}")
    if face.landmarks is None and _whole_image(image.shape, face):
        # exactly the resize the dataset readers apply, so predicting on aligned crops equals eval on them
        return resize_images(image[None], size)[0]
    return warp(image, alignment_matrix(image.shape, face, size=size, template=template), size)


def align_faces(images: Sequence[np.ndarray], faces_per_image: Sequence[Sequence[Face]], *, size: int,
                template: str = "rafdb") -> np.ndarray:
    """Every face of every image aligned (:func:`align_face`): ``(total_faces, size, size, 3)`` uint8,
    image by image, face by face."""
    if len(images) != len(faces_per_image):
        raise ValueError(f"{len(images)} images but {len(faces_per_image)} face lists")
    crops = [align_face(image, face, size=size, template=template)
             for image, faces in zip(images, faces_per_image) for face in faces]
    if not crops:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack(crops)
