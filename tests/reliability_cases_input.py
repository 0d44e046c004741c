"""The cases of the reliability catalogue about configuration, data and command-line input (see
``tests/reliability_catalogue.py``); ``CASES`` is the whole catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.reliability_catalogue import Case, Env, base_overrides
from tests.reliability_cases import RUN_CASES, SYNTH, _edit_config, _file, _train


def _csv_dataset(e: Env, *, train_lines: list[str], test_lines: list[str]) -> Path:
    from PIL import Image

    root = e.tmp / "csvdata"
    (root / "img").mkdir(parents=True)
    for i in range(21):
        Image.fromarray(np.full((20, 20, 3), 10 * i, np.uint8)).save(root / "img" / f"{i}.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(root / "img" / "dot.png")
    _file(root / "train.csv", ("path,label\n" + "".join(f"{x}\n" for x in train_lines)).encode("latin-1"))  # é: 1 byte
    _file(root / "test.csv", "path,label\n" + "".join(f"{x}\n" for x in test_lines))
    return root


_TRAIN_ROWS = [f"img/{i}.png,{i % 7}" for i in range(14)]
_TEST_ROWS = [f"img/{i}.png,{i % 7}" for i in range(14, 21)]


def _csv_train(e: Env, *extra: str) -> list[str]:
    return ["train", "data=csv", f"data.root={e.tmp / 'csvdata'}", f"data.cache_dir={e.tmp / 'cache'}",
            "data.image_size=32", "data.workers=1", "model.backbone=resnet_tiny", "train.batch_size=4",
            "train.epochs=1", f"out={e.tmp / 'runs'}", *extra]


# -- 11, 15: configuration files and overrides --------------------------------------------------
CONFIG = [
    Case("a YAML file with a key given twice", "11", lambda e: _train(e)[:1] + [e.tmp / "c.yaml"] + _train(e)[1:], 2,
         "key 'lr' is given twice", setup=lambda e: _file(e.tmp / "c.yaml", "train:\n  lr: 0.1\n  lr: 0.01\n")),
    Case("a YAML file with a section given twice", "11", lambda e: ["train", e.tmp / "c.yaml"], 2,
         lambda e: f"{e.tmp / 'c.yaml'}: key 'train'",
         setup=lambda e: _file(e.tmp / "c.yaml", "train: {lr: 0.1}\nseed: 1\ntrain: {epochs: 2}\n")),
    Case("an override mapping with a key twice", "11", lambda e: _train(e, "train={lr: 0.1, lr: 0.2}"), 2,
         "key 'lr' is given twice"),
    Case("method=ce method.name=scn", "11", lambda e: _train(e, "method=ce", "method.name=scn"), 2, "method.name"),
    Case("data=noisyfer data={name: synthetic}", "11", lambda e: _train(e, "data={name: synthetic}"), 2,
         "data.name"),
    Case("train.lr=1e-3 on the command line", "15", lambda e: _train(e, "train.lr=1e-3", "name=r"), 0, "",
         check=lambda e, o, r: None if "lr: 0.001" in (e.tmp / "runs" / "r" / "config.yaml").read_text()
         else "lr not 0.001"),
    Case("lr: 1e-3 in a YAML file", "15", lambda e: ["train", e.tmp / "c.yaml", *_train(e, "name=r")[1:]], 0, "",
         setup=lambda e: _file(e.tmp / "c.yaml", "train:\n  lr: 1e-3\n  weight_decay: 5E-4\n"),
         check=lambda e, o, r: None if "weight_decay: 0.0005" in (e.tmp / "runs" / "r" / "config.yaml").read_text()
         else "weight_decay not 5e-4"),
    Case("train.lr=.inf", "extra", lambda e: _train(e, "train.lr=.inf"), 2, "train.lr"),
    Case("train.lr=.nan", "extra", lambda e: _train(e, "train.lr=.nan"), 2, "train.lr"),
    Case("train.epochs='3' (a string)", "extra", lambda e: _train(e, "train.epochs='3'"), 2, "train.epochs"),
    Case("a YAML file that is not YAML", "extra", lambda e: ["train", e.tmp / "c.yaml"], 2,
         lambda e: str(e.tmp / "c.yaml"), setup=lambda e: _file(e.tmp / "c.yaml", "train: [1, 2\n")),
    Case("a YAML file that is not UTF-8", "extra", lambda e: ["train", e.tmp / "c.yaml"], 2,
         lambda e: f"{e.tmp / 'c.yaml'}:2", setup=lambda e: _file(e.tmp / "c.yaml", b"seed: 1\nname: caf\xe9\n")),
    Case("a YAML file holding a list", "extra", lambda e: ["train", e.tmp / "c.yaml"], 2,
         lambda e: str(e.tmp / "c.yaml"), setup=lambda e: _file(e.tmp / "c.yaml", "- 1\n- 2\n")),
    Case("a folder as the config file", "extra", lambda e: ["train", e.tmp], 2, "got a directory"),
    Case("model.options with an unknown option", "extra", lambda e: _train(e, "model.options={bogus: 1}"), 2,
         "bogus"),
    Case("a folder as model.pretrained", "smaller", lambda e: _train(e, f"model.pretrained={e.tmp}"), 2,
         "is a directory"),
    Case("a text file as model.pretrained", "extra", lambda e: _train(e, f"model.pretrained={e.tmp / 'w.pth'}"), 2,
         lambda e: str(e.tmp / "w.pth"), setup=lambda e: _file(e.tmp / "w.pth")),
    Case("noise.file missing", "extra", lambda e: _train(e, f"noise.file={e.tmp / 'n.csv'}"), 2,
         lambda e: str(e.tmp / "n.csv")),
    Case("noise.kind=bogus", "extra", lambda e: _train(e, "noise.kind=bogus", "noise.rate=0.2"), 2, "bogus"),
    Case("data.min_side=0", "extra", lambda e: _train(e, "data.min_side=0"), 2, "data.min_side"),
    Case("data.image_size=8", "extra", lambda e: _train(e, "data.image_size=8"), 2, "data.image_size"),
]

# -- 12: images below the minimum; readers' messages ------------------------------------------------
IMAGES = [
    Case("a 1x1 image in a CSV dataset", "12", lambda e: _csv_train(e), 2, "dot.png",
         setup=lambda e: _csv_dataset(e, train_lines=_TRAIN_ROWS + ["img/dot.png,1"], test_lines=_TEST_ROWS)),
    Case("a 1x1 image with data.on_bad=skip", "12", lambda e: _csv_train(e, "data.on_bad=skip", "name=r"), 0, "",
         setup=lambda e: _csv_dataset(e, train_lines=_TRAIN_ROWS + ["img/dot.png,1"], test_lines=_TEST_ROWS),
         check=lambda e, o, r: None if "dot.png" in (e.tmp / "runs" / "r" / "skipped_items.jsonl").read_text()
         else "the 1x1 image was not reported"),
    Case("a CSV list whose line 12 is not UTF-8", "smaller", lambda e: _csv_train(e), 2, "train.csv:12:",
         setup=lambda e: _csv_dataset(e, train_lines=_TRAIN_ROWS[:10] + ["img/caf\xe9.png,1"] + _TRAIN_ROWS[10:],
                                      test_lines=_TEST_ROWS)),
    Case("an empty test list", "smaller", lambda e: _csv_train(e), 2, "test.csv",
         setup=lambda e: _csv_dataset(e, train_lines=_TRAIN_ROWS, test_lines=[])),
]

# -- 13, 14: sweeps and the simulator ------------------------------------------------------------------
def _failed_point(e: Env) -> None:
    logs = e.sweep / "logs"
    logs.mkdir()
    (logs / "seed-1.log").write_text("noisyfer: error: something broke\n")
    (logs / "seed-1.failed.json").write_text(json.dumps({"status": "failed", "exit_status": 2, "message":
                                                         "noisyfer: error: something broke",
                                                         "log": str(logs / "seed-1.log")}))


SWEEPS_AND_SYNTH = [
    Case("report on a sweep with a failed point", "13", lambda e: ["report", e.sweep, "--no-features"], 0, "",
         setup=_failed_point, check=lambda e, o, r: None if "failed (1/1)" in (e.sweep / "tables.md").read_text()
         and "something broke" in (e.sweep / "results.csv").read_text() else "the failure is not shown"),
    Case("synth --out with --num-test 0", "14", lambda e: ["synth", "--num-test", "0", "--out", e.tmp / "s"], 2,
         "--num-test"),
    Case("synth --num-train 0", "smaller", lambda e: ["synth", "--num-train", "0", "--out", e.tmp / "s"], 2,
         "--num-train"),
    Case("synth --size 16", "extra", lambda e: ["synth", "--size", "16", "--out", e.tmp / "s"], 2, "--size"),
    Case("synth --class-counts bogus", "extra", lambda e: ["synth", "--class-counts", "bogus", "--preview", "p.png"],
         2, "--class-counts"),
    Case("synth --workers -1", "extra", lambda e: [*SYNTH[:-2], "--workers", "-1", "--out", e.tmp / "s"], 2,
         "--workers"),
    Case("data=synthetic data.num_train=0", "smaller", lambda e: ["train", "data=synthetic", "data.num_train=0",
                                                                  f"out={e.tmp}"], 2, "data.num_train"),
    Case("data=synthetic data.num_test=0", "14", lambda e: ["train", "data=synthetic", "data.num_test=0",
                                                            f"out={e.tmp}"], 2, "data.num_test"),
    Case("noise --rate 1.5", "smaller", lambda e: ["noise", "--kind", "symmetric", "--rate", "1.5", "--data", e.data,
                                                 "--out", "n.csv"], 2, "--rate must be"),
    Case("noise --kind instance without --probs", "extra", lambda e: [
        "noise", "--kind", "instance", "--rate", "0.2", "--data", e.copy("data"), "--out", "n.csv"], 2, "--probs=FILE.npy",
        setup=lambda e: _drop_column(e.copy("data"), "label_dist")),
    Case("noise --pairs that is not JSON", "extra", lambda e: ["noise", "--kind", "asymmetric", "--rate", "0.2",
                                                               "--data", e.data, "--out", "n.csv", "--pairs", "{x"],
         2, "--pairs"),
    Case("noise --out x.json", "extra", lambda e: ["noise", "--kind", "symmetric", "--rate", "0.2", "--data", e.data,
                                                   "--out", "n.json"], 2, "n.json"),
    Case("noise --data a run directory", "extra", lambda e: ["noise", "--kind", "symmetric", "--rate", "0.2",
                                                             "--data", e.run, "--out", "n.csv"], 2, "meta.json"),
]

# -- every other command's bad arguments ---------------------------------------------------------------
def _sweep(e: Env, *extra: str) -> list[str]:
    return ["sweep", *base_overrides(e.data), "seed=0,1", *extra, "--out", e.tmp / "sw"]


COMMANDS = [
    Case("sweep --jobs 0", "extra", lambda e: _sweep(e, "--jobs", "0"), 2, "--jobs"),
    Case("sweep --shard 3/2", "extra", lambda e: _sweep(e, "--shard", "3/2"), 2, "--shard"),
    Case("sweep --out a file", "extra", lambda e: _sweep(e, "--out", e.tmp / "f")[:-2], 2,
         lambda e: f"--out: not a directory: {e.tmp / 'f'}", setup=lambda e: _file(e.tmp / "f"), protect=lambda e: [e.tmp / "f"]),
    Case("sweep with an unknown key", "extra", lambda e: _sweep(e, "train.bogus=1"), 2, "train.bogus"),
    Case("sweep method=ce method.name=scn,ce", "11", lambda e: _sweep(e, "method=ce", "method.name=scn,ce"), 2,
         "method.name"),
    Case("sweep with 1e-3 in a grid", "15", lambda e: _sweep(e, "train.lr=1e-3,1e-4", "--dry-run"), 0,
         "train.lr-0.001"),
    Case("sweep --collect of a folder that is no sweep", "extra", lambda e: ["sweep", "--collect", "--out", e.tmp],
         2, "sweep.yaml"),
    Case("sweep over a run made with other settings", "extra", lambda e: _sweep(e, "--dry-run"), 2, "train.lr",
         setup=lambda e: _sweep_run_with(e, "lr: 0.003", "lr: 0.1")),
    Case("report --top 0", "extra", lambda e: ["report", e.run, "--top", "0"], 2, "--top"),
    Case("suspects --top 0", "extra", lambda e: ["suspects", e.run, "--top", "0"], 2, "--top"),
    Case("suspects --out a .txt", "extra", lambda e: ["suspects", e.run, "--out", "s.txt"], 2, "--out"),
    Case("suspects of a folder that is no run", "extra", lambda e: ["suspects", e.tmp], 2, lambda e: str(e.tmp)),
    Case("eval --checkpoint last of a run without checkpoints", "extra",
         lambda e: ["eval", e.run, "--checkpoint", "last"], 2, "no checkpoint",
         setup=lambda e: [p.unlink() for p in (e.run / "checkpoints").iterdir()]),
    Case("train with a second argument without '='", "extra", lambda e: _train(e, "epochs"), 2, "'epochs'"),
    Case("train with an empty key", "extra", lambda e: _train(e, "=3"), 2, "empty key"),
    Case("train method.bogus=1 (an option the method lacks)", "extra", lambda e: _train(e, "method.bogus=1"), 2,
         "method.bogus"),
    # a dataset without a test split gets a held-out one (issue 17); asking for one where it exists is refused
    Case("train data.test_fraction on a dataset with a test split", "extra",
         lambda e: _train(e, "data.test_fraction=0.2"), 2, "data.test_fraction"),
    Case("demo --epochs 0", "extra", lambda e: ["demo", "--epochs", "0", "--out", e.tmp], 2, "train.epochs"),
    Case("noise --probs missing", "extra", lambda e: ["noise", "--kind", "instance", "--rate", "0.2", "--data",
                                                      e.data, "--out", "n.csv", "--probs", "p.npy"], 2, "p.npy"),
    Case("noise --kind bogus", "extra", lambda e: ["noise", "--kind", "bogus", "--rate", "0.2", "--data", e.data,
                                                   "--out", "n.csv"], 2, "bogus"),
    Case("an unknown command", "extra", lambda e: ["trian"], 2, "trian"),
]


def _drop_column(data: Path, name: str) -> None:
    table = dict(np.load(data / "train.table.npz"))
    del table[name]
    (data / "train.table.npz").unlink()
    np.savez(data / "train.table.npz", **table)
    meta = json.loads((data / "meta.json").read_text())
    meta["splits"]["train"]["columns"].remove(name)
    (data / "meta.json").write_text(json.dumps(meta))


def _sweep_run_with(e: Env, old: str, new: str) -> None:
    run = e.tmp / "sw" / "runs" / "seed-0"
    run.parent.mkdir(parents=True)
    _edit_config(e, old, new)
    e.run.rename(run)


CASES: list[Case] = [*RUN_CASES, *CONFIG, *IMAGES, *SWEEPS_AND_SYNTH, *COMMANDS]
