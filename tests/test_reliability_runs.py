"""Issue 13, what the catalogue cannot show in one line: resumed runs after a fault give the uninterrupted
numbers, writes are atomic, a killed process releases its run, Ctrl-C names the run, paths and
permissions of what a run writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

import noisyfer
from noisyfer.cli.main import main
from noisyfer.config import config_from_args
from noisyfer.engine.rundir import RunDirectory
from noisyfer.errors import RunBusy, StorageError, TrainingDiverged
from noisyfer.methods.base import Method, StepOutput
from noisyfer.registry import METHODS, register_method


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time_epoch_s")
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished 3-epoch run (every checkpoint kept) on 112 faces, and its overrides."""
    from noisyfer.data.format import save_dataset
    from tests.conftest import make_tiny_split

    out = tmp_path_factory.mktemp("reference")
    data = save_dataset({"train": make_tiny_split(112, seed=1), "test": make_tiny_split(35, seed=2)}, out / "data")
    overrides = ["data=noisyfer", f"data.root={data}", "model.backbone=resnet_tiny", "train.batch_size=16",
                 "train.lr=0.003", "seed=0", "train.epochs=3", "train.keep_checkpoints=0", f"out={out}",
                 "noise.kind=symmetric", "noise.rate=0.3"]
    return noisyfer.train(config_from_args(None, overrides + ["name=reference"])), overrides


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))


def test_truncated_newest_checkpoint_falls_back_and_reproduces_the_run(reference, tmp_path, capsys):
    result, _ = reference
    run = _copy(result.run_dir, tmp_path)
    newest = run / "checkpoints" / "epoch_003.pt"
    newest.write_bytes(newest.read_bytes()[:10_000])  # what a crash during a non-atomic copy leaves
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('{"epoch": 4, "train_lo')  # and a partial line, as a full disk leaves it
    resumed = noisyfer.resume(run)
    err = capsys.readouterr().err
    assert "epoch_003.pt: not a readable checkpoint" in err and "resuming from epoch_002.pt instead" in err
    assert _metrics(run) == _metrics(result.run_dir)
    assert resumed.summary["accuracy_last"] == result.summary["accuracy_last"]


def test_a_write_refused_mid_run_leaves_a_run_that_resumes_to_identical_numbers(reference, tmp_path):
    result, overrides = reference
    real_replace = os.replace

    def refuse(src, dst, *args, **kwargs):  # the run folder became read-only after epoch 1
        if "epoch_002" in str(dst):
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    with mock.patch("os.replace", refuse), pytest.raises(StorageError, match="epoch_002.pt: Permission denied"):
        noisyfer.train(config_from_args(None, overrides + ["name=faulty", f"out={tmp_path}"]))
    run = tmp_path / "faulty"
    assert not list((run / "checkpoints").glob(".*.tmp")), "temporary left behind"
    noisyfer.resume(run)
    assert _metrics(run) == _metrics(result.run_dir)


def test_best_model_is_replaced_atomically(tmp_path):
    run = RunDirectory.create(str(tmp_path), "r")
    run.save_best({"epoch": 1, "method": {"w": torch.ones(3)}})
    before = run.best_model.read_bytes()

    def killed(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    with mock.patch("torch.save", killed), pytest.raises(KeyboardInterrupt):
        run.save_best({"epoch": 2, "method": {"w": torch.zeros(3)}})
    assert run.best_model.read_bytes() == before
    assert sorted(p.name for p in run.path.iterdir()) == ["best_model.pt", "checkpoints"]


def test_a_second_process_cannot_train_a_locked_run_and_a_killed_one_releases_it(tmp_path):
    run = RunDirectory.create(str(tmp_path), "r")
    # another process takes the lock as RunDirectory.lock does (plain Python: no torch to import)
    holder = subprocess.Popen([sys.executable, "-c", f"import fcntl, os, time\nfh = open({str(run.lock_file)!r}, 'a+')\n"
                               "fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)\nfh.write(f'{os.getpid()}\\n')\n"
                               "fh.flush()\nprint('locked', flush=True)\ntime.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusy, match=rf"another process \(pid {holder.pid}\) is training this run"):
            run.lock()
        other = RunDirectory(run.path)
        with pytest.raises(RunBusy):
            other.lock()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    run.lock()  # the kernel released the dead process's lock
    with pytest.raises(RunBusy, match=rf"pid {os.getpid()}"):
        RunDirectory(run.path).lock()  # and this process's lock holds against a second opener
    run.unlock()


def test_ctrl_c_names_the_run_to_resume_and_the_run_directory_is_printed_first(tiny_overrides, tmp_path, capsys):
    from noisyfer.engine.trainer import Trainer

    real = Trainer._train_epoch

    def interrupted_in_epoch_2(self, epoch, *args):
        if epoch == 2:
            raise KeyboardInterrupt  # what Python raises on SIGINT
        return real(self, epoch, *args)

    with mock.patch.object(Trainer, "_train_epoch", interrupted_in_epoch_2):
        assert main(["train", *tiny_overrides, "name=interrupted"]) == 130
    run = tmp_path / "runs" / "interrupted"
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("noisyfer:")]
    assert lines[0] == f"noisyfer: run directory {run}"
    assert lines[-1] == f"noisyfer: interrupted; the run resumes with: noisyfer train resume={run}"
    assert (run / "checkpoints" / "epoch_001.pt").is_file()
    again = RunDirectory(run)
    again.lock()  # released on the way out
    again.unlock()


def test_config_yaml_stores_absolute_paths_and_eval_works_from_elsewhere(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_data_dir.parent)
    code = main(["train", "data=noisyfer", f"data.root={tiny_data_dir.name}", "model.backbone=resnet_tiny",
                 "train.batch_size=64", "train.epochs=1", f"out={tmp_path}", "name=rel"])
    assert code == 0
    text = (tmp_path / "rel" / "config.yaml").read_text()
    assert f"  root: {tiny_data_dir}  # as given: {tiny_data_dir.name}\n" in text
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "rel"]) == 0
    assert main(["train", "resume=rel", "train.epochs=1"]) == 0
    assert "# as given: tiny" in (tmp_path / "rel" / "config.yaml").read_text()


@pytest.mark.parametrize("umask, directory, file", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_datasets_and_label_files_follow_the_umask(tmp_path, umask, directory, file):
    from noisyfer.data.format import save_dataset
    from noisyfer.noise import noise_from_dataset, save_noisy_labels
    from tests.conftest import make_tiny_split

    previous = os.umask(umask)
    try:
        root = save_dataset({"train": make_tiny_split(14), "test": make_tiny_split(7)}, tmp_path / "d")
        labels = save_noisy_labels(noise_from_dataset(make_tiny_split(14), kind="symmetric", rate=0.2, seed=0),
                                   tmp_path / "n.csv")
    finally:
        os.umask(previous)
    assert root.stat().st_mode & 0o777 == directory
    assert {p.stat().st_mode & 0o777 for p in root.iterdir()} == {file}
    assert labels.stat().st_mode & 0o777 == file and labels.with_suffix(".json").stat().st_mode & 0o777 == file


def test_a_failed_start_leaves_no_run_directory(tmp_path):
    assert main(["train", "data=noisyfer", f"data.root={tmp_path / 'missing'}", f"out={tmp_path / 'runs'}"]) == 2
    assert not (tmp_path / "runs").exists()


class _LateNaN(Method):
    def __init__(self, *, options, **common):
        super().__init__(options=options, **common)
        self.fc = torch.nn.Linear(self.backbone.num_features, self.num_classes)
        self.steps = 0

    def forward(self, images):
        return self.fc(self.backbone(images).features)

    def training_step(self, batch, *, epoch):
        self.steps += 1
        loss = torch.nn.functional.cross_entropy(self(self.augment.train(batch.images)), batch.labels)
        return StepOutput(loss=loss * float("nan") if epoch == 2 else loss)


def test_divergence_names_the_checkpoint_that_exists(tiny_overrides):
    register_method("_test_late_nan")(_LateNaN)
    try:
        with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1\.\.1 of 14; .*the last good state is "
                                                   r".*checkpoints/epoch_001\.pt"):
            noisyfer.train(config_from_args(None, tiny_overrides + ["method=_test_late_nan", "name=nan"]))
    finally:
        METHODS._entries.pop("_test_late_nan")
