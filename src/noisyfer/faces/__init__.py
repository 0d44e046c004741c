"""Faces in real photographs: detection (MTCNN, Haar, none), five-point alignment, image reading.

::

    from noisyfer.faces import create_detector, align_faces, read_image

    image = read_image("photo.jpg")                      # HxWx3 uint8 RGB
    detector = create_detector("mtcnn")                  # or "haar", or "none" for aligned crops
    faces = detector.detect([image])[0]                  # Face(box, score, landmarks), largest first
    crops = align_faces([image], [faces], size=100)      # (n_faces, 100, 100, 3) uint8, RAF-DB framing
"""

from .align import ALIGN_TEMPLATES, BOX_FRAMING, align_face, align_faces, alignment_matrix, similarity_transform
from .detectors import DETECTORS, FaceDetector, create_detector, detector_names
from .face import LANDMARK_NAMES, Face
from .images import as_rgb, read_image
from . import haar, mtcnn  # noqa: E402,F401  (register the detectors: DETECTORS is complete on import)

__all__ = [
    "ALIGN_TEMPLATES", "BOX_FRAMING", "DETECTORS", "Face", "FaceDetector", "LANDMARK_NAMES", "align_face", "align_faces",
    "alignment_matrix", "as_rgb", "create_detector", "detector_names", "read_image", "similarity_transform",
]
