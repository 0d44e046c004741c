"""The decoded cache: hits without decoding, rebuilds when a source or a setting changes, reports kept."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from noisyfer.config import DataConfig, build_options
from noisyfer.data import cache
from noisyfer.data.datasets import create_dataset
from noisyfer.data.fixtures import write_fer2013, write_rafdb
from noisyfer.data.readers import decode, pipeline
from noisyfer.engine.loader import TensorLoader
from noisyfer.registry import DATASETS

LABEL_FILE = "EmoLabel/list_patition_label.txt"


def read(root, cache_dir, *, name="rafdb", image_size=None, on_bad="error", **options):
    config = DataConfig(name=name, root=str(root), cache_dir=str(cache_dir), image_size=image_size, on_bad=on_bad)
    return create_dataset(config, build_options(DATASETS.get(name).options, {"workers": 1, **options},
                                                section="data"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_rafdb(tmp_path_factory.mktemp("pristine") / "raf", num_train=14, num_test=7, size=48)


@pytest.fixture
def raf(pristine, tmp_path):
    shutil.copytree(pristine.root, tmp_path / "raf")
    return tmp_path / "raf"


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    original = pipeline.decode_files

    def counting(paths, **kwargs):
        calls.append(len(paths))
        return original(paths, **kwargs)

    monkeypatch.setattr(pipeline, "decode_files", counting)
    return calls


def test_second_read_is_served_from_the_cache(raf, tmp_path, count_decodes):
    first = read(raf, tmp_path / "c")
    second = read(raf, tmp_path / "c")
    assert count_decodes == [21]
    for split in ("train", "test"):
        assert np.array_equal(first[split].images, second[split].images)
        assert np.array_equal(first[split].labels, second[split].labels)
        assert first[split].columns["path"].tolist() == second[split].columns["path"].tolist()
    assert second.info["source_key"] == first.info["source_key"]
    assert second.info["num_source_files"] == 22  # the label file and 21 images
    # a hit maps the images (copy-on-write): nothing is read up front, and writes stay private
    images = second["train"].images
    assert isinstance(images, np.memmap) and images.flags.writeable
    loader = TensorLoader(second["train"], batch_size=7, device=torch.device("cpu"))
    batch = loader.batch(torch.tensor([3, 0, 5]))
    assert torch.equal(batch.images, torch.from_numpy(first["train"].images[[3, 0, 5]]).permute(0, 3, 1, 2))
    images[0] = 0
    assert read(raf, tmp_path / "c")["train"].images[0].max() > 0


def test_a_changed_image_is_never_served_stale(raf, tmp_path, count_decodes):
    before = read(raf, tmp_path / "c")["train"]
    path = raf / "Image/aligned/train_00001_aligned.jpg"
    Image.fromarray(np.full((48, 48, 3), 255, dtype=np.uint8)).save(path, quality=95)
    after = read(raf, tmp_path / "c")["train"]
    assert count_decodes == [21, 21]
    assert after.images[0].min() >= 250 and before.images[0].min() < 250
    assert np.array_equal(after.images[1:], before.images[1:])
    assert len([p for p in (tmp_path / "c" / "rafdb").iterdir() if p.is_dir()]) == 1  # rebuilt in place


def test_a_touched_label_file_or_a_new_setting_rebuilds(raf, tmp_path, count_decodes):
    read(raf, tmp_path / "c")
    label_file = raf / LABEL_FILE
    st = label_file.stat()
    os.utime(label_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    read(raf, tmp_path / "c")
    read(raf, tmp_path / "c", image_size=64)
    read(raf, tmp_path / "c", class_order="affectnet")
    read(raf, tmp_path / "c", image_size=64)
    assert count_decodes == [21, 21, 21, 21]
    assert len([p for p in (tmp_path / "c" / "rafdb").iterdir() if p.is_dir()]) == 3


def test_skip_report_survives_a_cache_hit(raf, tmp_path, count_decodes):
    path = raf / "Image/aligned/train_00002_aligned.jpg"
    path.write_bytes(path.read_bytes()[:200])  # truncated: only the decoder finds out
    first = read(raf, tmp_path / "c", on_bad="skip")
    second = read(raf, tmp_path / "c", on_bad="skip")
    assert count_decodes == [21]
    assert len(first["train"]) == len(second["train"]) == 13
    assert [b.line for b in second.report.skipped] == [2]
    assert second.report.skipped == first.report.skipped
    with pytest.raises(Exception, match="train_00002_aligned.jpg"):
        read(raf, tmp_path / "c")  # on_bad=error is another entry: it decodes and stops


def test_a_damaged_entry_is_rebuilt(raf, tmp_path, count_decodes):
    read(raf, tmp_path / "c")
    [entry] = [p for p in (tmp_path / "c" / "rafdb").iterdir() if p.is_dir()]
    (entry / "train.images.npy").unlink()
    assert len(read(raf, tmp_path / "c")["train"]) == 14
    assert count_decodes == [21, 21]


def test_csv_readers_are_keyed_by_the_csv(tmp_path, monkeypatch):
    tree = write_fer2013(tmp_path / "fer")
    read(tree.root, tmp_path / "c", name="fer2013")
    from noisyfer.data.readers import fer2013

    def fail(*args, **kwargs):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(fer2013, "read_fer2013_csv", fail)
    assert len(read(tree.root, tmp_path / "c", name="fer2013")["train"]) == 14
    path = tree.root / "fer2013.csv"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same bytes, new mtime
    with pytest.raises(AssertionError, match="parsed although cached"):
        read(tree.root, tmp_path / "c", name="fer2013")


def test_parallel_decoding_gives_the_same_array(raf, monkeypatch):
    monkeypatch.setattr(decode, "CHUNK", 4)
    paths = sorted(str(p) for p in (raf / "Image/aligned").iterdir())
    paths.insert(3, str(raf / "missing.jpg"))
    serial, failed_serial = decode.decode_files(paths, size=40, workers=1)
    parallel, failed_parallel = decode.decode_files(paths, size=40, workers=2)
    assert np.array_equal(serial, parallel)
    assert list(failed_serial) == list(failed_parallel) == [3]
    assert "missing.jpg" in failed_parallel[3]


def test_keys():
    assert cache.source_key(["a", "b"], [1, 2], [3, 4]) == cache.source_key(["b", "a"], [2, 1], [4, 3])
    assert cache.source_key(["a", "b"], [1, 2], [3, 4]) != cache.source_key(["a", "b"], [1, 2], [3, 5])
    root = cache.Path("/data/raf")
    assert cache.settings_key("rafdb", root, {"image_size": 100}) != cache.settings_key("rafdb", root, {"image_size": 112})
    assert cache.settings_key("rafdb", root, {"x": 1}) != cache.settings_key("fer2013", root, {"x": 1})
    sizes, mtimes = cache.stat_files([__file__, "/no/such/file", os.path.dirname(__file__)])
    assert sizes[0] == os.path.getsize(__file__) and sizes[1] == -1 and sizes[2] == -1
