"""Alignment: Umeyama's similarity, the warp's pixel geometry, a round trip on a real face; read_image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from noisyfer.data.datasets import resize_images
from noisyfer.errors import UserError
from noisyfer.faces import (ALIGN_TEMPLATES, BOX_FRAMING, Face, align_face, align_faces, alignment_matrix,
                            create_detector, read_image, similarity_transform)
from noisyfer.faces.align import warp


def similarity(angle, scale, tx, ty):
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    truth = similarity(0.4, 1.7, -12.0, 30.0)
    dst = src @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(similarity_transform(src, dst), truth, atol=1e-9)


def test_umeyama_never_reflects():
    src = np.array([[0.0, 0], [10, 0], [0, 5]])
    dst = src * [-1, 1]  # a mirror image: the best similarity is a rotation, never a reflection
    assert np.linalg.det(similarity_transform(src, dst)[:, :2]) > 0


def test_templates_are_faces():
    for name, t in ALIGN_TEMPLATES.items():
        assert t.shape == (5, 2) and t.dtype == np.float32 and ((t > 0) & (t < 1)).all(), name
        assert t[0, 0] < t[2, 0] < t[1, 0] and t[:2, 1].max() < t[2, 1] < t[3:, 1].min(), name
    # rafdb: eye line at 40 % of the height, the face centred
    assert ALIGN_TEMPLATES["rafdb"][:2, 1].mean() == pytest.approx(0.40, abs=1e-6)
    assert ALIGN_TEMPLATES["rafdb"][:, 0].mean() == pytest.approx(0.5, abs=0.01)


def blob(height, width, x, y, sigma=2.0):
    yy, xx = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, 2)


def centroid(image):
    g = image[..., 0].astype(float)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]] + 0.5
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


@pytest.mark.parametrize("scale", [1.3, 0.6, 0.2])
def test_warp_moves_a_point_where_the_matrix_says(scale):
    """Continuous pixel coordinates in and out, also through the area pre-reduction (scale < 0.5)."""
    point = np.array([61.3, 47.8])
    image = blob(120, 140, *point, sigma=2.0 / min(scale, 1.0))
    matrix = similarity(0.3, scale, 0, 0)
    matrix[:, 2] = np.array([32.0, 32.0]) - matrix[:, :2] @ point  # the point lands on (32, 32)
    np.testing.assert_allclose(centroid(warp(image, matrix, 64)), [32, 32], atol=0.15)


def test_box_and_whole_image_crops():
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    face = Face(box=[10, 20, 50, 40], score=1.0)  # 40 x 20: squared to 40, times the template's margin
    m = alignment_matrix(image.shape, face, size=50, template="rafdb")
    enlarge, centre_y = BOX_FRAMING["rafdb"]
    s = 50 / (40 * enlarge)  # the box centre (30, 30) goes to (25, 50 * centre_y)
    np.testing.assert_allclose(m, [[s, 0, 25 - s * 30], [0, s, 50 * centre_y - s * 30]])
    whole = create_detector("none").detect([image])[0][0]
    np.testing.assert_array_equal(align_face(image, whole, size=32), resize_images(image[None], 32)[0])
    square = image[:48, :48]
    np.testing.assert_array_equal(align_face(square, create_detector("none").detect([square])[0][0], size=48),
                                  square)  # already at size: unchanged
    crops = align_faces([image, square], [[face, whole], []], size=24)
    assert crops.shape == (2, 24, 24, 3) and crops.dtype == np.uint8
    assert align_faces([image], [[]], size=24).shape == (0, 24, 24, 3)


@pytest.mark.parametrize("template", ["rafdb", "arcface"])
def test_round_trip_on_a_real_face(template):
    """Align the astronaut's face, detect again: the landmarks land on the template."""
    pytest.importorskip("skimage")
    from noisyfer.faces.samples import astronaut_path

    mtcnn = create_detector("mtcnn", device="cpu")
    image = read_image(astronaut_path())
    face = mtcnn.detect([image])[0][0]
    size = 160
    crop = align_face(image, face, size=size, template=template)
    moved = face.landmarks @ alignment_matrix(image.shape, face, size=size, template=template)[:, :2].T \
        + alignment_matrix(image.shape, face, size=size, template=template)[:, 2]
    target = ALIGN_TEMPLATES[template] * size
    residual = np.abs(moved - target).max()
    assert residual < 0.06 * size  # a similarity cannot fit five points exactly; it fits them closely
    again = mtcnn.detect([crop])[0]
    assert again, "the aligned face must still be a face"
    np.testing.assert_allclose(again[0].landmarks, moved, atol=0.03 * size)


def test_read_image_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    gray = read_image(tmp_path / "gray.png")
    assert gray.shape == (20, 30, 3) and (gray[..., 0] == gray[..., 2]).all()
    Image.fromarray(np.dstack([rgb, np.full((20, 30), 7, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    assert read_image(tmp_path / "phone.jpg").shape == (30, 20, 3)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="broken.jpg: cannot read image"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(UserError, match="missing.png: image file not found"):
        read_image(tmp_path / "missing.png")
