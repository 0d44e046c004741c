"""``noisyfer prepare`` end to end on a tiny folder of real (LFW, astronaut) and simulated photos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from noisyfer.cli.main import main
from noisyfer.data.datasets import resize_images
from noisyfer.data.format import load_dataset, load_split
from noisyfer.data.synthetic import SynthConfig, generate
from noisyfer.errors import DataError, UserError
from noisyfer.faces import create_detector, read_image
from noisyfer.faces.prepare import LOG_FILE, prepare

pytest.importorskip("skimage", reason="scikit-image provides the real photographs")
from noisyfer.faces.samples import astronaut_path, lfw_subset  # noqa: E402

FOLDERS = ["Neutral", "happy", "Sad", "surprise", "fear", "disgust", "angry"]  # spellings the readers accept


def photo(face: np.ndarray, *, pad_y: int = 30, pad_x: int = 40) -> Image.Image:
    """A face crop with surroundings, as in a photo."""
    return Image.fromarray(cv2.copyMakeBorder(face, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE))


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Per class: an LFW face and a simulated face on a plain background; plus a photo without a face,
    a photo with two faces, the astronaut portrait and a text file."""
    root = tmp_path_factory.mktemp("raw")
    lfw, _ = lfw_subset(upscale=4)
    sim = generate(SynthConfig(num_train=1, num_test=len(FOLDERS), image_size=96, seed=1), workers=1)["test"]
    for c, name in enumerate(FOLDERS):
        (root / name).mkdir()
        photo(lfw[c]).save(root / name / f"lfw{c}.jpg", quality=95)
        background = np.full((200, 260, 3), 90, np.uint8)
        background[50:146, 80:176] = sim.images[c]
        Image.fromarray(background).save(root / name / f"sim{c}.png")
    Image.open(astronaut_path()).convert("RGB").save(root / "happy" / "astronaut.jpg", quality=95)
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(root / "Sad" / "wall.png")
    Image.fromarray(np.concatenate([lfw[20], lfw[21]], axis=1)).save(root / "surprise" / "two.png")
    (root / "happy" / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn", device="cpu")


def read_log(out):
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


def test_prepare_folder_end_to_end(raw, tmp_path, mtcnn, capsys):
    out = tmp_path / "ds"
    assert main(["prepare", str(raw), "--out", str(out), "--size", "64", "--test-fraction", "0.5",
                 "--device", "cpu"]) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    photos = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.*") if p.suffix != ".txt")
    # what the detector alone finds in each photo: the log must account for every one
    found = {p: mtcnn.detect([read_image(raw / p)])[0] for p in photos}
    assert len(found["Sad/wall.png"]) == 0 and len(found["surprise/two.png"]) == 2
    log = {e["path"]: e for e in read_log(out)}
    assert sorted(log) == sorted(photos + ["happy/notes.txt"])  # every file once, nothing silent
    assert log["happy/notes.txt"]["action"] == "ignored: not an image file"
    assert log["Sad/wall.png"]["action"] == "left out: no face"
    two = log["surprise/two.png"]
    assert two["action"] == "kept the largest of 2 faces" and two["faces"] == 2
    areas = [f.area for f in found["surprise/two.png"]]
    box = np.array(two["box"])
    assert (box[2] - box[0]) * (box[3] - box[1]) == pytest.approx(max(areas), rel=1e-3)
    for path, faces in found.items():
        assert log[path]["faces"] == len(faces), path
        assert log[path]["action"].startswith("kept") == bool(faces), path
    kept = [p for p in photos if found[p]]
    no_face = [p for p in photos if not found[p]]
    several = [p for p in photos if len(found[p]) > 1]
    data = load_dataset(out)
    assert set(data) == {"train", "test"} and data["train"].class_names[:2] == ("neutral", "happiness")
    table_paths = sorted(np.concatenate([data["train"].columns["path"], data["test"].columns["path"]]).tolist())
    assert table_paths == sorted(kept)
    assert data["train"].images.shape[1:] == (64, 64, 3) and len(data["train"]) + len(data["test"]) == len(kept)
    assert {log[p]["split"] for p in data["test"].columns["path"]} == {"test"}
    for split in data.values():  # labels follow the class folders
        for path, label in zip(split.columns["path"], split.labels):
            assert FOLDERS[label] == path.split("/")[0]
    assert summary == (f"prepared {out}: {len(kept)} faces ({len(data['train'])} train, {len(data['test'])} test) "
                       f"from {len(photos)} photos; {len(several)} with several faces: largest kept; {len(no_face)} "
                       f"without a face: left out; 1 non-image files: ignored; log: {out / LOG_FILE}")
    # an existing dataset is replaced only when asked; same seed, same split
    with pytest.raises(DataError, match="--force"):
        prepare(raw, out, size=64, test_fraction=0.5, device="cpu", progress=False)
    prepare(raw, out, size=64, test_fraction=0.5, device="cpu", progress=False, force=True)
    np.testing.assert_array_equal(load_split(out, "test").columns["path"], data["test"].columns["path"])


def test_prepare_options(raw, tmp_path):
    out = tmp_path / "skip"
    prepare(raw, out, size=48, multiple="skip", test_fraction=0.5, device="cpu", progress=False)
    entry = {e["path"]: e for e in read_log(out)}["surprise/two.png"]
    assert entry["action"] == "left out: 2 faces" and len(entry["detections"]) == 2
    assert "surprise/two.png" not in load_split(out, "train").columns["path"].tolist()
    with pytest.raises(UserError, match=r"wall.png: no face found by detector 'mtcnn'"):
        prepare(raw, tmp_path / "err", no_face="error", test_fraction=0.5, device="cpu", progress=False)
    with pytest.raises(UserError, match="holds no noisyfer dataset"):
        prepare(raw, raw.parent, test_fraction=0.5, device="cpu", progress=False)
    with pytest.raises(UserError, match="--multiple must be one of largest, skip"):
        prepare(raw, tmp_path / "x", multiple="all")


def test_prepare_detector_none_is_a_resize(raw, tmp_path):
    out = tmp_path / "none"
    result = prepare(raw, out, detector="none", size=32, test_fraction=0.5, progress=False)
    assert result.counts["no face"] == 0 and sum(result.kept.values()) == result.photos == 17  # notes.txt aside
    train = load_split(out, "train")
    expected = resize_images(read_image(raw / train.columns["path"][0])[None], 32)[0]
    np.testing.assert_array_equal(train.images[0], expected)


def test_prepare_csv_and_split_folders(raw, tmp_path, capsys):
    lines = ["path,label,valence,arousal"]
    for c, name in enumerate(FOLDERS):
        lines += [f"{name}/lfw{c}.jpg,{c},0.5,-0.25", f"{name}/sim{c}.png,{name},0.1,0.2"]
    lines.append("missing.jpg,happy,0,0")
    (raw / "list.csv").write_text("\n".join(lines) + "\n")
    try:
        with pytest.raises(UserError, match="missing.jpg: image file not found; --on-bad skip"):
            prepare(raw / "list.csv", tmp_path / "csv", test_fraction=0.5, device="cpu", progress=False)
        result = prepare(raw / "list.csv", tmp_path / "csv", test_fraction=0.5, on_bad="skip", device="cpu",
                         progress=False)
    finally:
        (raw / "list.csv").unlink()
    assert result.counts["unreadable"] == 1
    assert {e["path"]: e["action"] for e in read_log(tmp_path / "csv")}["missing.jpg"] == "skipped: unreadable"
    train = load_split(tmp_path / "csv", "train")
    lfw_rows = np.char.find(train.columns["path"].astype(str), "lfw") >= 0
    np.testing.assert_allclose(train.columns["valence"][lfw_rows], 0.5)
    np.testing.assert_allclose(train.columns["arousal"][~lfw_rows], 0.2)

    split_root = tmp_path / "split"
    for split, keep in (("train", slice(None)), ("test", slice(0, 2))):
        for name in FOLDERS[keep]:
            (split_root / split / name).mkdir(parents=True)
            for p in (raw / name).glob("lfw*.jpg"):
                (split_root / split / name / p.name).write_bytes(p.read_bytes())
    with pytest.raises(UserError, match="train/ and test/ folders, which give the split"):
        prepare(split_root, tmp_path / "s", test_fraction=0.3)
    result = prepare(split_root, tmp_path / "s", device="cpu", progress=False)
    assert result.kept == {"train": 7, "test": 2}
    assert load_split(tmp_path / "s", "test").columns["path"][0].startswith("test/")


def test_prepared_dataset_trains(raw, tmp_path, capsys):
    out = tmp_path / "ds"
    prepare(raw, out, size=32, test_fraction=0.5, device="cpu", progress=False)
    assert main(["train", "data=noisyfer", f"data.root={out}", "model.backbone=resnet_tiny", "train.epochs=1",
                 "train.batch_size=4", f"out={tmp_path / 'runs'}", "device=cpu"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_prepare_reports_a_missing_class(raw, tmp_path):
    partial = tmp_path / "partial"
    (partial / "happy").mkdir(parents=True)
    (partial / "happy" / "a.jpg").write_bytes((raw / "happy" / "lfw1.jpg").read_bytes())
    (partial / "happy" / "b.jpg").write_bytes((raw / "happy" / "lfw1.jpg").read_bytes())
    with pytest.raises(DataError, match="have no training face"):
        prepare(partial, tmp_path / "p", test_fraction=0.5, device="cpu", progress=False)
