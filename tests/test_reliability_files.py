"""Issue 13, the file helpers: what may be deleted, what a damaged JSON-lines file yields, how a refused
write reads."""

from __future__ import annotations

import errno

import pytest

from noisyfer.data.cache import store_entry
from noisyfer.engine.rundir import read_jsonl, read_metrics_file
from noisyfer.errors import DataError, StorageError
from noisyfer.fileio import atomic_write_bytes, describe_os_error
from tests.conftest import make_tiny_split


def test_the_cache_rebuilds_an_unreadable_entry_but_never_deletes_foreign_files(tmp_path):
    splits = {"train": make_tiny_split(14), "test": make_tiny_split(7)}
    entry = tmp_path / "rafdb" / "0123456789abcdef01234567"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text("{ half a file")
    (entry / "train.images.npy").write_bytes(b"\x93NUMPY")
    store_entry(entry, splits, {"source_key": "k"})  # a partial copy of an entry: rebuilt
    assert (entry / "train.images.npy").stat().st_size > 1000
    (entry / "meta.json").write_text("{ half a file")
    (entry / "my_notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="my_notes.txt"):
        store_entry(entry, splits, {"source_key": "k"})
    assert (entry / "my_notes.txt").read_text() == "keep me"


def test_a_partial_last_line_is_dropped_and_any_other_bad_line_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "lo')
    assert read_metrics_file(path) == [{"epoch": 1}, {"epoch": 2}]
    path.write_text('{"epoch": 1}\n{"epoch": 2, "lo\n{"epoch": 3}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2: invalid JSON line"):
        read_jsonl(path)
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 2}\n{"epoch": 3}\n')
    with pytest.raises(DataError, match="record 3 is of epoch 2, expected epoch 3"):
        read_metrics_file(path)


def test_a_refused_write_names_the_target_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_bytes(target, b"old")
    (tmp_path / ".summary.json.tmp").mkdir()  # the temporary's name is taken by a folder: open() fails
    with pytest.raises(StorageError, match=r"cannot write .*summary\.json: Is a directory"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x.pt") == \
        f"cannot write {tmp_path / 'x.pt'}: No space left on device"
    assert describe_os_error(FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "f")), tmp_path / "f" / "d") \
        == f"cannot write {tmp_path / 'f' / 'd'}: File exists ({tmp_path / 'f'})"
