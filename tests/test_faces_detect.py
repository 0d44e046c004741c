"""Face detectors on real photographs from scikit-image's data folder (a test dependency)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from noisyfer.errors import UserError
from noisyfer.faces import Face, create_detector, detector_names, read_image
from noisyfer.faces.mtcnn_nets import ONet, PNet, RNet, weights_dir
from noisyfer.faces.samples import astronaut_path, lfw_subset

pytest.importorskip("skimage", reason="scikit-image provides the real photographs (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn", device="cpu")


@pytest.fixture(scope="module")
def astronaut():
    return read_image(astronaut_path())


@pytest.fixture(scope="module")
def lfw():
    return lfw_subset(upscale=4)


def test_registered_detectors():
    assert detector_names() == ["haar", "mtcnn", "none"]


@pytest.mark.parametrize("name,net", [("pnet", PNet), ("rnet", RNet), ("onet", ONet)])
def test_published_weights_load_strictly(name, net):
    state = torch.load(weights_dir() / f"{name}.pt", map_location="cpu", weights_only=True)
    assert sorted(state) == sorted(net().state_dict())
    net().load_state_dict(state, strict=True)


def test_astronaut_face_and_landmarks(mtcnn, astronaut):
    faces = mtcnn.detect([astronaut])[0]
    assert faces and all(isinstance(f, Face) for f in faces)
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    face = faces[0]
    # the portrait's face: about 90 px wide around x=225, y=115 (Haar agrees, see below)
    cx, cy = (face.box[:2] + face.box[2:]) / 2
    assert 200 < cx < 250 and 90 < cy < 140 and 70 < face.box[2] - face.box[0] < 110
    assert face.score > 0.99
    eyes, nose, mouth = face.landmarks[:2], face.landmarks[2], face.landmarks[3:]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()  # eyes above nose above mouth
    assert eyes[0, 0] < nose[0] < eyes[1, 0] and mouth[0, 0] < nose[0] < mouth[1, 0]  # left/right order
    x1, y1, x2, y2 = face.box
    assert ((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2)).all()
    assert ((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2)).all()


def test_astronaut_haar(astronaut):
    faces = create_detector("haar").detect([astronaut])[0]
    assert len(faces) == 1 and faces[0].landmarks is None
    cx, cy = (faces[0].box[:2] + faces[0].box[2:]) / 2
    assert 200 < cx < 250 and 90 < cy < 140


def test_batched_equals_one_by_one(mtcnn, astronaut, lfw):
    """Images of different sizes in one call give what each gives alone (same-size ones share forwards)."""
    images = [astronaut, lfw[0][0], lfw[0][1], lfw[0][150], astronaut[::2, ::2].copy()]
    together = mtcnn.detect(images)
    for image, faces in zip(images, together):
        alone = mtcnn.detect([image])[0]
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)


@pytest.mark.parametrize("name,min_faces,max_false", [("mtcnn", 90, 5), ("haar", 70, 5)])
def test_lfw_subset_rates(name, min_faces, max_false, lfw, mtcnn):
    images, is_face = lfw
    detector = mtcnn if name == "mtcnn" else create_detector(name)
    found = np.array([len(faces) > 0 for faces in detector.detect(list(images))])
    faces_found, false_found = int(found[is_face].sum()), int(found[~is_face].sum())
    print(f"\n{name}: LFW subset x4 (100x100): {faces_found}/100 faces found, {false_found}/100 non-faces flagged")
    assert faces_found >= min_faces and false_found <= max_false


def test_none_detector_covers_the_image():
    image = np.zeros((30, 50, 3), np.uint8)
    faces = create_detector("none").detect([image, image[:10]])
    assert [len(f) for f in faces] == [1, 1]
    np.testing.assert_array_equal(faces[0][0].box, [0, 0, 50, 30])
    np.testing.assert_array_equal(faces[1][0].box, [0, 0, 50, 10])
    assert faces[0][0].score == 1.0 and faces[0][0].landmarks is None


def test_blank_image_has_no_face(mtcnn):
    assert mtcnn.detect([np.full((120, 160, 3), 128, np.uint8)]) == [[]]
    assert mtcnn.detect([np.zeros((8, 8, 3), np.uint8)]) == [[]]  # smaller than one window


def test_bad_inputs_and_options(monkeypatch):
    with pytest.raises(UserError, match="unknown face detector 'mtcn'.*did you mean 'mtcnn'"):
        create_detector("mtcn")
    with pytest.raises(UserError, match="unknown option.*min_size"):
        create_detector("haar", min_size=3)
    with pytest.raises(UserError, match="image 0: expected an HxWx3 uint8"):
        create_detector("none").detect([np.zeros((4, 4), np.float32)])
    with pytest.raises(UserError, match="thresholds"):
        create_detector("mtcnn", device="cpu", thresholds=(0.6, 0.7))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "facenet_pytorch" else real(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps facenet-pytorch==2.6.0"):
        create_detector("mtcnn", device="cpu")


def test_large_images_are_batched_fewer_at_a_time(mtcnn, lfw, monkeypatch):
    """The canvas-pixel budget splits a batch; the faces found do not change."""
    from noisyfer.faces import mtcnn as module

    images = list(lfw[0][:4])
    together = mtcnn.detect(images)
    monkeypatch.setattr(module, "CANVAS_PIXELS", 1)  # one image per P-Net forward
    apart = mtcnn.detect(images)
    assert [len(f) for f in together] == [len(f) for f in apart]
    for a, b in zip(together, apart):
        for fa, fb in zip(a, b):
            np.testing.assert_allclose(fa.box, fb.box, atol=1e-3)
