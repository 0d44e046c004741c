"""``noisyfer predict`` and the Python recognizer on the simulator's faces: equal to eval, videos, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import noisyfer
from noisyfer.cli.main import main
from noisyfer.config import config_from_args
from noisyfer.data.datasets import create_dataset
from noisyfer.engine.build import build_experiment
from noisyfer.engine.loader import TensorLoader
from noisyfer.engine.trainer import Precision, evaluate

SIZE = 32


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    """A one-epoch ce run on simulated faces, and the simulator's test images written as PNG files."""
    tmp = tmp_path_factory.mktemp("predict")
    overrides = ["method=ce", "data=synthetic", f"data.image_size={SIZE}", "data.num_train=256", "data.num_test=48",
                 f"data.cache_dir={tmp / 'cache'}", "model.backbone=resnet_tiny", "train.batch_size=32",
                 "train.epochs=1", f"out={tmp / 'runs'}", "seed=0"]
    cfg = config_from_args(None, overrides)
    result = noisyfer.train(cfg)
    test = create_dataset(cfg.data, cfg.data_options)["test"]
    png_dir = tmp / "pngs"
    png_dir.mkdir()
    for i, image in enumerate(test.images):
        Image.fromarray(image).save(png_dir / f"test_{i:04d}.png")
    return result.run_dir, cfg, test, png_dir


def _eval_logits(cfg, run_dir) -> np.ndarray:
    exp = build_experiment(cfg)
    exp.method.load_state_dict(torch.load(run_dir / "best_model.pt", weights_only=False)["method"])
    loader = TensorLoader(exp.test, batch_size=cfg.train.eval_batch_size, device=torch.device("cpu"))
    return evaluate(exp.method, loader, Precision("off", torch.device("cpu")), exp.augment)[1]


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_on_png_files_equals_eval(synth_run, tmp_path, capsys):
    run_dir, cfg, test, png_dir = synth_run
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run_dir), str(png_dir), "--out", str(out), "--detector", "none", "--quiet"]) == 0
    assert main(["eval", str(run_dir)]) == 0
    report = json.loads((run_dir / "eval_test_best.json").read_text())
    rows = _rows(out)
    assert len(rows) == len(test) and all(r["status"] == "face" and r["face"] == "0" for r in rows)
    assert [r["source"] for r in rows] == [str(png_dir / f"test_{i:04d}.png") for i in range(len(test))]
    names = list(test.class_names)
    labels = np.array([names.index(r["label"]) for r in rows])
    confusion = np.zeros((len(names), len(names)), dtype=int)
    np.add.at(confusion, (test.labels, labels), 1)
    assert confusion.tolist() == report["confusion"]
    logits = _eval_logits(cfg, run_dir)
    assert np.array_equal(labels, logits.argmax(1))
    probs = np.array([[float(r[f"p_{n}"]) for n in names] for r in rows])
    np.testing.assert_allclose(probs, torch.from_numpy(logits).softmax(1).numpy(), atol=2e-6)
    assert [float(rows[0][k]) for k in ("x1", "y1", "x2", "y2")] == [0, 0, SIZE, SIZE]


def test_python_api_takes_paths_pil_images_and_arrays(synth_run):
    run_dir, _, test, png_dir = synth_run
    rec = noisyfer.load(run_dir, detector="none", device="cpu")
    path = png_dir / "test_0003.png"
    by_path = rec.predict(path)
    by_pil = rec.predict(Image.open(path))
    by_array = rec.predict(test.images[3])
    assert len(by_path) == len(by_pil) == len(by_array) == 1
    face = by_path[0]
    assert face.box.tolist() == [0, 0, SIZE, SIZE] and face.landmarks is None and face.score == 1.0
    assert np.array_equal(face.probabilities, by_pil[0].probabilities)
    assert np.array_equal(face.probabilities, by_array[0].probabilities)
    assert face.label == test.class_names[int(face.probabilities.argmax())]
    aligned = rec.predict_aligned(test.images[:5])
    assert aligned.shape == (5, len(test.class_names))
    np.testing.assert_allclose(aligned[3], face.probabilities, atol=1e-6)
    upscaled = rec.predict_aligned(np.repeat(np.repeat(test.images[:2], 2, axis=1), 2, axis=2))
    assert upscaled.shape == (2, len(test.class_names))  # other sizes are resized to the model's


def _write_video(path, frames, fps):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_rows_every_and_smoothing(synth_run, tmp_path):
    run_dir, _, test, _ = synth_run
    frames = [np.kron(test.images[i], np.ones((2, 2, 1), dtype=np.uint8)) for i in range(10)]  # 64x64
    video = tmp_path / "clip.mp4"
    _write_video(video, frames, fps=5.0)
    rec = noisyfer.load(run_dir, detector="none", device="cpu")
    raw = list(rec.predict_video(video, every=3))
    assert [r.frame for r in raw] == [0, 3, 6, 9]
    assert [r.timestamp for r in raw] == pytest.approx([0.0, 0.6, 1.2, 1.8])
    assert all(len(r.faces) == 1 and r.faces[0].track == 0 for r in raw)
    smoothed = list(rec.predict_video(video, every=3, smooth=0.5))
    p = [r.faces[0].probabilities for r in raw]
    expected = [p[0]]
    for q in p[1:]:
        expected.append(0.5 * expected[-1] + 0.5 * q)
    for got, want in zip(smoothed, expected):
        np.testing.assert_allclose(got.faces[0].probabilities, want, atol=1e-6)

    out = tmp_path / "video.jsonl"
    annotated = tmp_path / "drawn"
    assert main(["predict", str(run_dir), str(video), "--out", str(out), "--detector", "none", "--every", "3",
                 "--smooth", "0.5", "--annotate", str(annotated), "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["frame"], r["timestamp"], r["face"], r["track"]) for r in rows] == \
        [(0, 0.0, 0, 0), (3, 0.6, 0, 0), (6, 1.2, 0, 0), (9, 1.8, 0, 0)]
    for row, want in zip(rows, expected):
        np.testing.assert_allclose([row["probabilities"][n] for n in test.class_names], want, atol=2e-6)
    import cv2

    capture = cv2.VideoCapture(str(annotated / "clip.mp4"))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += 1
        assert frame.shape == (64, 64, 3)
    assert count == 4


def test_no_face_row_bad_files_and_annotations(synth_run, tmp_path, capsys):
    run_dir, _, test, png_dir = synth_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.full((120, 160, 3), 128, dtype=np.uint8)).save(inputs / "a_blank.png")
    (inputs / "b_broken.jpg").write_bytes(b"not an image")
    Image.fromarray(np.kron(test.images[0], np.ones((3, 3, 1), dtype=np.uint8))).save(inputs / "c_face.png")
    (inputs / "notes.txt").write_text("ignored: neither an image nor a video")
    out = tmp_path / "preds.csv"

    status = main(["predict", str(run_dir), str(inputs), "--out", str(out), "--detector", "mtcnn", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "b_broken.jpg" in err and "--on-bad skip" in err

    drawn = tmp_path / "drawn"
    assert main(["predict", str(run_dir), str(inputs), "--out", str(out), "--detector", "mtcnn", "--quiet",
                 "--on-bad", "skip", "--annotate", str(drawn)]) == 0
    printed = capsys.readouterr().out
    assert "ignored 1 files" in printed
    rows = _rows(out)
    assert [(r["source"].rsplit("/", 1)[1], r["status"]) for r in rows][:2] == \
        [("a_blank.png", "no_face"), ("b_broken.jpg", "error")]
    assert "cannot read image" in rows[1]["error"] and rows[0]["label"] == "" and rows[0]["error"] == ""
    assert all(r["source"].endswith("c_face.png") for r in rows[2:])
    blank = Image.open(drawn / "in" / "a_blank.png")
    assert blank.size == (160, 120)
    assert Image.open(drawn / "in" / "c_face.png").size == (96, 96)
    assert not (drawn / "in" / "b_broken.jpg").exists()

    status = main(["predict", str(run_dir), str(tmp_path / "missing.png"), "--out", str(out), "--quiet"])
    assert status == 2 and "input not found" in capsys.readouterr().err


def test_face_tracks_follow_boxes_and_smooth_per_track():
    from noisyfer.inference.video import FaceTracks

    tracks = FaceTracks(factor=0.75)
    left, right = [0, 0, 10, 10], [50, 0, 60, 10]
    ids, probs = tracks.update(np.array([left, right]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert ids == [0, 1] and probs.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # the faces come in the other order and moved a little: each keeps its track and its own average
    ids, probs = tracks.update(np.array([[51, 0, 61, 10], [1, 0, 11, 10]]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert ids == [1, 0]
    np.testing.assert_allclose(probs, [[0.25, 0.75], [0.75, 0.25]])
    ids, _ = tracks.update(np.array([[200, 200, 210, 210]]), np.array([[0.5, 0.5]]))
    assert ids == [2]  # no overlap: a new face
