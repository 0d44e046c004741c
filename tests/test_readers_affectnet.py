"""AffectNet reader: exclusions of codes 7-10, face-box crops, valence/arousal, layouts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from noisyfer.config import DataConfig, build_options
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import AFFECTNET_CODES, write_affectnet
from noisyfer.errors import DataError
from noisyfer.registry import DATASETS

LISTS = "Manually_Annotated_file_lists"


def read(root, cache, *, image_size=None, on_bad="error", **options):
    config = DataConfig(name="affectnet", root=str(root), cache_dir=str(cache), image_size=image_size, on_bad=on_bad)
    return create_dataset(config, build_options(DATASETS.get("affectnet").options, {"workers": 1, **options},
                                                section="data"))


@pytest.fixture(scope="module")
def aff(tmp_path_factory):
    return write_affectnet(tmp_path_factory.mktemp("aff") / "AffectNet", num_train=16, num_val=8, face=64)


def test_counts_labels_exclusions_and_valence_arousal(aff, tmp_path):
    splits = read(aff.root, tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 16, "test": 8}
    assert splits.report.excluded == {"expression 8 (none)": 2, "expression 9 (uncertain)": 2,
                                      "expression 10 (no-face)": 2}
    for split in ("train", "test"):
        data, expected = splits[split], aff.splits[split]
        assert data.class_names == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger",
                                    "contempt")
        assert [data.class_names[i] for i in data.labels] == aff.names(split)
        assert data.columns["path"].tolist() == [f"Manually_Annotated_Images/{p}" for p in expected.columns["path"]]
        for key in ("valence", "arousal"):
            assert data.columns[key].dtype == np.float32
            np.testing.assert_array_equal(data.columns[key], expected.columns[key])
        assert data.images.shape[1:] == (112, 112, 3)


def test_seven_classes_exclude_contempt_and_codes_are_affectnet_order(aff, tmp_path):
    seven = read(aff.root, tmp_path, classes=7)
    contempt = sum(n == "contempt" for n in aff.names("train"))
    assert contempt == 2 and len(seven["train"]) == 16 - contempt
    assert seven.report.excluded["expression 7 (contempt)"] == contempt + sum(n == "contempt" for n in aff.names("test"))
    assert AFFECTNET_CODES == {"neutral": 0, "happiness": 1, "sadness": 2, "surprise": 3, "fear": 4, "disgust": 5,
                               "anger": 6, "contempt": 7}
    rows = (aff.root / LISTS / "training.csv").read_text().splitlines()[1:]
    kept_codes = [int(r.split(",")[6]) for r in rows if int(r.split(",")[6]) < 7]
    assert seven["train"].labels.tolist() == kept_codes  # AffectNet order is the native order
    raf_order = read(aff.root, tmp_path, classes=7, class_order="rafdb")["train"]
    to_rafdb = {0: 6, 1: 3, 2: 4, 3: 0, 4: 1, 5: 2, 6: 5}
    assert raf_order.labels.tolist() == [to_rafdb[c] for c in kept_codes]


def test_face_box_crop_recovers_the_face(aff, tmp_path):
    cropped = read(aff.root, tmp_path, image_size=64)["train"]
    faces = aff.splits["train"].images.astype(np.int16)
    error = np.abs(cropped.images - faces).mean()
    assert error < 5  # JPEG only
    rows = (aff.root / LISTS / "training.csv").read_text().splitlines()[1:]
    x, y = (int(v) for v in rows[0].split(",")[1:3])
    from PIL import Image

    with Image.open(aff.root / "Manually_Annotated_Images" / rows[0].split(",")[0]) as image:
        canvas = np.asarray(image.convert("RGB"), dtype=np.int16)
    shifted = canvas[y + 1:y + 65, x + 1:x + 65]  # the box moved by one pixel
    exact = canvas[y:y + 64, x:x + 64]
    assert np.array_equal(cropped.images[0], exact.astype(np.uint8))
    assert np.abs(shifted - faces[0]).mean() > np.abs(exact - faces[0]).mean() + 1
    whole = read(aff.root, tmp_path, image_size=64, crop=False)["train"]
    assert np.abs(whole.images - faces).mean() > 3 * error  # the canvas, not the face


@pytest.fixture
def damaged(aff, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(aff.root, root)
    path = root / LISTS / "training.csv"
    return root, path, path.read_text().splitlines()


@pytest.mark.parametrize("column, value, message", [
    (6, "11", "expression '11' is not an integer in 0..10"),
    (6, "happy", "expression 'happy' is not an integer in 0..10"),
    (7, "1.5", r"valence/arousal \(1.5, .*\) must be numbers in \[-1, 1\]"),
    (8, "nan", r"valence/arousal \(.*, nan\) must be numbers in \[-1, 1\]"),
    (3, "0", "face box .* must be numbers with positive width and height"),
])
def test_bad_rows_name_the_line(damaged, tmp_path, column, value, message):
    root, path, lines = damaged
    fields = lines[2].split(",")
    fields[column] = value
    lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"training.csv:3: {message}"):
        read(root, tmp_path / "c")
    skipped = read(root, tmp_path / "c", on_bad="skip")
    assert len(skipped["train"]) == 15 and [b.line for b in skipped.report.skipped] == [3]


def test_face_box_outside_the_image(damaged, tmp_path):
    root, path, lines = damaged
    fields = lines[1].split(",")
    fields[1], fields[2] = "5000", "5000"
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="training.csv:2: cannot decode image .*: ValueError: face box .* lies outside"):
        read(root, tmp_path / "c")


def test_same_image_in_both_lists(damaged, tmp_path):
    root, path, lines = damaged
    val = root / LISTS / "validation.csv"
    val_lines = val.read_text().splitlines()
    val.write_text("\n".join(val_lines + [lines[1]]) + "\n")
    with pytest.raises(DataError, match=f"validation.csv:{len(val_lines) + 1}: image .* listed again "
                                        f"\\(first on .*training.csv:2\\)"):
        read(root, tmp_path / "c")


def test_csvs_at_the_root_and_missing_images_folder(damaged, tmp_path):
    root, path, lines = damaged
    for name in ("training.csv", "validation.csv"):
        shutil.move(root / LISTS / name, root / name)
    assert len(read(root, tmp_path / "c")["train"]) == 16
    shutil.move(root / "Manually_Annotated_Images", root / "images")
    with pytest.raises(DataError, match="no image folder: expected one of Manually_Annotated_Images"):
        read(root, tmp_path / "c")
    (root / "training.csv").unlink()
    with pytest.raises(DataError, match="AffectNet training.csv not found"):
        read(root, tmp_path / "c")
