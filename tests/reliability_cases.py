"""The cases of the reliability catalogue (see ``tests/reliability_catalogue.py``) about runs, files and
weights, grouped by the numbered items of issue 13; ``issue`` says which item a case checks (``extra``:
found on the way). Bad configuration and command-line input: ``tests/reliability_cases_input.py``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from tests.reliability_catalogue import Case, Env, base_overrides


# -- helpers ------------------------------------------------------------------------------------
def _file(path: Path, text: str | bytes = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def _truncate(path: Path, keep: int) -> None:
    data = path.read_bytes()[:keep]
    path.unlink()  # a new file: never the inode of a shared copy
    path.write_bytes(data)


def _train(e: Env, *extra: str) -> list[str]:
    return ["train", *base_overrides(e.data), f"out={e.tmp / 'runs'}", *extra]


def _resume(e: Env, *extra: str) -> list[str]:
    return ["train", f"resume={e.run}", *extra]


def _edit_config(e: Env, old: str, new: str) -> None:
    path = e.run / "config.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _drop_section(path: Path, name: str) -> None:
    lines, skipping = [], False
    for line in path.read_text().splitlines(keepends=True):
        if not line.startswith(" "):
            skipping = line.startswith(f"{name}:")
        if not skipping:
            lines.append(line)
    path.write_text("".join(lines))


def _metrics_epochs(e: Env) -> list[int]:
    return [json.loads(line)["epoch"] for line in (e.run / "metrics.jsonl").read_text().splitlines()]


def _expect_epochs(expected: list[int]):
    return lambda e, out, err: None if _metrics_epochs(e) == expected else f"metrics epochs {_metrics_epochs(e)}"


def _unchanged_config(e: Env) -> list[Path]:
    return [e.run / "config.yaml"]


def _changed_dataset(e: Env) -> Path:
    """A copy of the dataset whose test labels differ in one sample, and the run pointed at it."""
    data = e.copy("data")
    table = dict(np.load(data / "test.table.npz"))
    table["label"] = table["label"].copy()
    table["label"][0] = (table["label"][0] + 1) % 7
    (data / "test.table.npz").unlink()
    np.savez(data / "test.table.npz", **table)
    _edit_config(e, f"root: {e.data}", f"root: {data}")
    return data


@contextlib.contextmanager
def _held_lock(e: Env):
    from noisyfer.engine.rundir import RunDirectory

    other = RunDirectory(e.run)  # another open file description: flock conflicts even in one process
    other.lock()
    try:
        yield
    finally:
        other.unlock()


def _failing(function: str, errno_: int, text: str, *, inside: str):
    """Patch ``function`` (dotted) to raise OSError(errno_) for a path argument containing ``inside``."""
    import importlib

    module, name = function.rsplit(".", 1)
    original = getattr(importlib.import_module(module), name)

    def fake(*args, **kwargs):
        if any(inside in str(a) for a in args if isinstance(a, (str, Path))):
            raise OSError(errno_, text)
        return original(*args, **kwargs)

    return mock.patch(function, fake)


def _disk_full_in_torch_save(e: Env):
    """Every write torch.save makes fails with ENOSPC (torch itself reports only 'unexpected pos')."""
    from noisyfer.fileio import _RecordingWriter

    def write(self, data):
        self.error = OSError(28, "No space left on device")
        raise self.error

    return mock.patch.object(_RecordingWriter, "write", write)


def _sgd(*extra):
    return lambda e: _train(e, "train.optimizer=sgd", *extra)


# -- 1-3: data loss ------------------------------------------------------------------------------
SYNTH = ["synth", "--num-train", "20", "--num-test", "5", "--size", "32", "--workers", "1"]
DATA_LOSS = [
    Case("synth --out a folder with a user's file", "1", lambda e: [*SYNTH, "--out", e.tmp / "mine"], 2,
         lambda e: str(e.tmp / "mine"), setup=lambda e: _file(e.tmp / "mine" / "notes.txt"),
         protect=lambda e: [e.tmp / "mine" / "notes.txt"]),
    Case("synth --out a run directory", "1", lambda e: [*SYNTH, "--out", e.run], 2, lambda e: str(e.run),
         protect=lambda e: [e.run / "best_model.pt", e.run / "checkpoints" / "epoch_002.pt"]),
    Case("synth --out . in a folder with files", "1", lambda e: [*SYNTH, "--out", "."], 2, ".",
         setup=lambda e: _file(e.tmp / "thesis.tex"), protect=lambda e: [e.tmp / "thesis.tex"]),
    Case("synth --out an existing dataset without --force", "1", lambda e: [*SYNTH, "--out", e.copy("data")], 2,
         "--force", protect=lambda e: [e.tmp / "data" / "meta.json", e.tmp / "data" / "train.images.npy"]),
    Case("synth --force over a dataset holding a user's file", "1",
         lambda e: [*SYNTH, "--out", e.copy("data"), "--force"], 2, "notes.txt",
         setup=lambda e: _file(e.copy("data") / "notes.txt"), protect=lambda e: [e.tmp / "data" / "notes.txt"]),
    Case("synth --out a file", "1", lambda e: [*SYNTH, "--out", e.tmp / "file"], 2, lambda e: str(e.tmp / "file"),
         setup=lambda e: _file(e.tmp / "file"), protect=lambda e: [e.tmp / "file"]),
    Case("synth --force replaces a dataset", "1", lambda e: [*SYNTH, "--out", e.copy("data"), "--force"], 0,
         "wrote 20 train",
         check=lambda e, o, r: None if json.loads((e.tmp / "data" / "meta.json").read_text())["splits"]["train"]
         ["num_samples"] == 20 else "dataset not replaced"),
    Case("eval while best_model.pt is 0 bytes (killed write of old versions)", "2", lambda e: ["eval", e.run], 2,
         "best_model.pt", setup=lambda e: _truncate(e.run / "best_model.pt", 0)),
    Case("resume while another process trains the run", "3", lambda e: _resume(e, "train.epochs=3"), 2,
         "another process", context=_held_lock, protect=lambda e: [e.run / "metrics.jsonl", e.run / "config.yaml"]),
    Case("report of a run whose metrics.jsonl has an epoch twice", "3", lambda e: ["report", e.run, "--no-features"],
         2, "metrics.jsonl", setup=lambda e: _file(e.run / "metrics.jsonl", "".join(
             line + "\n" for line in [*(e.run / "metrics.jsonl").read_text().splitlines()] * 2))),
]

# -- 4, 9, 10: resume and provenance --------------------------------------------------------------
RESUME = [
    Case("resume with a truncated newest checkpoint", "4", lambda e: _resume(e, "train.epochs=2"), 0,
         "resuming from epoch_001.pt instead",
         setup=lambda e: _truncate(e.run / "checkpoints" / "epoch_002.pt", 5000), check=_expect_epochs([1, 2])),
    Case("resume with every checkpoint truncated", "4", lambda e: _resume(e, "train.epochs=3"), 2, "epoch_001.pt",
         setup=lambda e: [_truncate(e.run / "checkpoints" / f"epoch_00{i}.pt", 100) for i in (1, 2)]),
    Case("resume with a partial last line in metrics.jsonl", "4", lambda e: _resume(e, "train.epochs=3"), 0, "",
         setup=lambda e: _file(e.run / "metrics.jsonl", (e.run / "metrics.jsonl").read_text() + '{"epoch": 3, "tr'),
         check=_expect_epochs([1, 2, 3])),
    Case("resume removes stale temporaries", "smaller", lambda e: _resume(e), 0, ".epoch_003.pt.tmp",
         setup=lambda e: _file(e.run / "checkpoints" / ".epoch_003.pt.tmp", b"\0" * 100),
         check=lambda e, o, r: "stale file kept" if (e.run / "checkpoints" / ".epoch_003.pt.tmp").exists() else None),
    Case("resume after config.yaml's learning rate was edited", "9", lambda e: _resume(e, "train.epochs=3"), 2,
         "train.lr", setup=lambda e: _edit_config(e, "lr: 0.003", "lr: 0.1"), protect=_unchanged_config),
    Case("resume after a section was removed from config.yaml", "9", lambda e: _resume(e, "train.epochs=3"), 2,
         "noise.kind", setup=lambda e: _drop_section(e.run / "config.yaml", "noise"), protect=_unchanged_config),
    Case("resume with another learning rate on the command line", "9", lambda e: _resume(e, "train.lr=0.1"), 2,
         "train.lr=0.1", protect=_unchanged_config),
    Case("resume after the dataset's labels changed", "10", lambda e: _resume(e, "train.epochs=3"), 2, "labels",
         setup=_changed_dataset, protect=lambda e: [e.run / "metrics.jsonl"]),
    Case("eval after the test labels changed", "10", lambda e: ["eval", e.run], 2, "test: labels",
         setup=_changed_dataset),
    Case("eval --allow-data-change after the test labels changed", "10",
         lambda e: ["eval", e.run, "--allow-data-change"], 0, "warning: evaluating on changed data",
         setup=_changed_dataset),
    Case("resume of a folder that is not a run", "extra", lambda e: ["train", f"resume={e.tmp}"], 2, "config.yaml"),
    Case("resume with a config file too", "extra", lambda e: ["train", "c.yaml", f"resume={e.run}"], 2, "resume="),
]

# -- 5: the file system refuses ---------------------------------------------------------------------
OS_ERRORS = [
    Case("train out= naming a file", "5", lambda e: _train(e, f"out={e.tmp / 'f'}"), 2, lambda e: str(e.tmp / "f"),
         setup=lambda e: _file(e.tmp / "f"), protect=lambda e: [e.tmp / "f"]),
    Case("train out= below a file", "5", lambda e: _train(e, f"out={e.tmp / 'f' / 'runs'}"), 2,
         lambda e: str(e.tmp / "f"), setup=lambda e: _file(e.tmp / "f")),
    Case("synth --out below a file", "5", lambda e: [*SYNTH, "--out", e.tmp / "f" / "d"], 2,
         lambda e: str(e.tmp / "f"), setup=lambda e: _file(e.tmp / "f")),
    Case("noise --out an existing folder", "5", lambda e: ["noise", "--kind", "symmetric", "--rate", "0.2",
                                                           "--data", e.data, "--out", e.tmp / "d.csv"], 2,
         lambda e: str(e.tmp / "d.csv"), setup=lambda e: (e.tmp / "d.csv").mkdir()),
    Case("noise --out below a file", "5", lambda e: ["noise", "--kind", "symmetric", "--rate", "0.2", "--data",
                                                     e.data, "--out", e.tmp / "f" / "n.csv"], 2,
         lambda e: str(e.tmp / "f"), setup=lambda e: _file(e.tmp / "f")),
    Case("train under a file-size limit (full disk)", "5", lambda e: _train(e), 2, "File too large", fsize=200_000),
    Case("synth under a file-size limit", "5", lambda e: [*SYNTH, "--out", e.tmp / "s"], 2, "file-size limit",
         fsize=20_000, check=lambda e, o, r: "half-written dataset" if (e.tmp / "s").exists() else None),
    Case("noise under a file-size limit", "5", lambda e: ["noise", "--kind", "symmetric", "--rate", "0.2", "--data",
                                                          e.data, "--out", e.tmp / "n.csv"], 2,
         lambda e: str(e.tmp / "n.csv"), fsize=200),
    Case("eval under a file-size limit", "5", lambda e: ["eval", e.run], 2, "eval_test_best.json", fsize=300),
    Case("report under a file-size limit", "5", lambda e: ["report", e.run, "--no-features"], 2, "File too large",
         fsize=3_000),
    Case("suspects under a file-size limit", "5", lambda e: ["suspects", e.run, "--top", "5"], 2, "File too large",
         fsize=300),
    Case("resume under a file-size limit", "5", lambda e: _resume(e, "train.epochs=3"), 2, "File too large",
         fsize=200_000),
    Case("report --out below a file", "5", lambda e: ["report", e.run, "--no-features", "--out",
                                                      e.tmp / "f" / "r.html"], 2, lambda e: str(e.tmp / "f"),
         setup=lambda e: _file(e.tmp / "f")),
    Case("run folder read-only mid-run (rename refused)", "5", lambda e: _train(e, "train.epochs=2"), 2,
         "Permission denied", context=lambda e: _failing("os.replace", 13, "Permission denied", inside="epoch_002")),
    Case("disk full while writing the weights", "5", lambda e: _train(e), 2, "best_model.pt: No space left",
         context=_disk_full_in_torch_save),
    Case("disk full at the first write of a run", "5", lambda e: _train(e), 2, "config.yaml: No space left",
         context=lambda e: mock.patch("os.fsync", side_effect=OSError(28, "No space left on device"))),
]

# -- 6-8: eval / suspects / report / momentum -----------------------------------------------------
WEIGHTS = [
    Case("eval --checkpoint a text file", "6", lambda e: ["eval", e.run, "--checkpoint", e.tmp / "w.pt"], 2,
         lambda e: str(e.tmp / "w.pt"), setup=lambda e: _file(e.tmp / "w.pt", "not weights\n")),
    Case("eval --checkpoint a file without the method's weights", "6",
         lambda e: ["eval", e.run, "--checkpoint", e.tmp / "w.pt"], 2, "no 'method' weights",
         setup=lambda e: torch.save({"model": {}}, e.tmp / "w.pt")),
    Case("eval --checkpoint weights of the wrong shapes", "6",
         lambda e: ["eval", e.run, "--checkpoint", e.tmp / "w.pt"], 2, lambda e: str(e.tmp / "w.pt"),
         setup=lambda e: torch.save({"method": {k: torch.zeros(3) for k in torch.load(
             e.run / "best_model.pt")["method"]}}, e.tmp / "w.pt")),
    Case("eval with a truncated best_model.pt", "6", lambda e: ["eval", e.run], 2, "best_model.pt",
         setup=lambda e: _truncate(e.run / "best_model.pt", 4000)),
    Case("eval --checkpoint a folder", "6", lambda e: ["eval", e.run, "--checkpoint", e.run / "checkpoints"], 2,
         "directory"),
    Case("eval --checkpoint a missing file", "6", lambda e: ["eval", e.run, "--checkpoint", e.tmp / "no.pt"], 2,
         lambda e: str(e.tmp / "no.pt")),
    Case("eval --split val", "extra", lambda e: ["eval", e.run, "--split", "val"], 2, "--split"),
    Case("suspects with a truncated best_model.pt", "6", lambda e: ["suspects", e.run], 2, "best_model.pt",
         setup=lambda e: _truncate(e.run / "best_model.pt", 4000)),
    Case("report on a sweep with an unfinished run", "7", lambda e: ["report", e.sweep, "--no-features"], 0,
         "report.html", check=lambda e, o, r: None if "no finished run (1 running)" in (
             e.sweep / "report.md").read_text() else "the report does not say why a column is empty"),
    Case("report of a folder without runs", "extra", lambda e: ["report", e.tmp], 2, lambda e: str(e.tmp)),
    Case("report --out a .txt", "extra", lambda e: ["report", e.run, "--out", "r.txt"], 2, "--out"),
    Case("train.optimizer=sgd train.momentum=-0.5", "8", _sgd("train.momentum=-0.5"), 2, "train.momentum"),
    Case("train.momentum=1.5", "8", _sgd("train.momentum=1.5"), 2, "train.momentum"),
    Case("Nesterov without momentum", "8", _sgd("train.momentum=0", "train.nesterov=true"), 2, "train.nesterov"),
    Case("train.grad_clip=0", "extra", lambda e: _train(e, "train.grad_clip=0"), 2, "train.grad_clip"),
    Case("train.log_every=0", "extra", lambda e: _train(e, "train.log_every=0"), 2, "train.log_every"),
    Case("augment.strong_magnitude=99", "extra", lambda e: _train(e, "augment.strong_magnitude=99"), 2,
         "augment.strong_magnitude"),
    Case("seed=-1", "extra", lambda e: _train(e, "seed=-1"), 2, "seed"),
    Case("augment.erasing_scale=[a, b]", "extra", lambda e: _train(e, "augment.erasing_scale=[a, b]"), 2,
         "augment.erasing_scale[0]"),
    Case("train.batch_size larger than the training set", "extra", lambda e: _train(e, "train.batch_size=500"), 2,
         "train.batch_size"),
    Case("a loss that diverges in the first epoch", "smaller", lambda e: _train(e, "train.lr=1e12"), 1,
         "no epoch finished"),
]

RUN_CASES: list[Case] = [*DATA_LOSS, *RESUME, *OS_ERRORS, *WEIGHTS]
