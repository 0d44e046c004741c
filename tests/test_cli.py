"""The command line: exit codes, one-line user errors, the run directory as the last line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from noisyfer.cli.main import main


def _cli(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "noisyfer.cli.main", *args], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "method=nope"], "unknown method 'nope'"),
    (["train", "train.bogus=1"], "unknown key 'train.bogus'"),
    (["train", "data=nope"], "unknown dataset 'nope'"),
    (["train", "train.epochs=many"], "train.epochs: expected an integer, got 'many'"),
    (["train", "noise.rate=1.2"], "noise.rate: expected a rate in [0, 1), got 1.2"),
    (["train", "data=noisyfer", "data.root=/no/such/dir"], "data.root: directory not found: /no/such/dir"),
    (["train", "/no/such.yaml"], "config file not found: /no/such.yaml"),
    (["eval", "/no/such/run"], "not a run directory"),
    (["noise", "--kind", "symmetric", "--rate", "0.2", "--data", "/no/dir", "--out", "x.csv"], "--data: directory not found"),
    (["synth", "--num-train", "x"], "invalid int value"),
])
def test_user_errors_are_one_line_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_train_prints_run_dir_last_and_eval_reads_it(tiny_overrides):
    code, out, err = _cli("train", *tiny_overrides, "train.epochs=1")
    assert code == 0, err
    run_dir = out.strip().splitlines()[-1]
    summary = json.loads(open(f"{run_dir}/summary.json").read())
    for key in ("accuracy_best", "accuracy_last", "accuracy_last5", "balanced_accuracy_last",
                "per_class_accuracy_last", "confusion_last", "class_names"):
        assert key in summary
    assert 0 <= summary["accuracy_last"] <= 1
    code, out, err = _cli("eval", run_dir, "--checkpoint", "last")
    assert code == 0, err
    report = json.loads(open(f"{run_dir}/eval_test_last.json").read())
    assert report["accuracy"] == summary["accuracy_last"]  # same weights, same test set


def test_noise_command_writes_labels_and_sidecar(tiny_data_dir, tmp_path):
    out = tmp_path / "noisy.csv"
    code, stdout, err = _cli("noise", "--kind", "symmetric", "--rate", "0.25", "--seed", "3", "--data",
                             str(tiny_data_dir), "--out", str(out), "--exact")
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["kind"] == "symmetric" and meta["seed"] == 3
    # exact per-class counts: 448 samples = 64 per class, round(0.25 * 64) = 16 flipped each
    assert meta["realized_rate"] == pytest.approx(16 * 7 / 448)
    assert "realized rate 0.2500" in stdout


def test_noise_file_is_used_for_training(tiny_data_dir, tiny_overrides, tmp_path):
    out = tmp_path / "noisy.csv"
    assert main(["noise", "--kind", "asymmetric", "--rate", "0.3", "--data", str(tiny_data_dir), "--out", str(out)]) == 0
    import noisyfer
    from noisyfer.config import config_from_args

    result = noisyfer.train(config_from_args(None, tiny_overrides + ["train.epochs=1", f"noise.file={out}"]))
    used = (result.run_dir / "train_labels.csv").read_text()
    assert used == out.read_text()


def test_list_shows_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("methods:", "ce ", "backbones:", "resnet18", "resnet_small", "datasets:", "synthetic"):
        assert word in out


def test_a_closed_pipe_ends_quietly():
    # `noisyfer list | head -1`: the reader closes the pipe before noisyfer has written everything
    proc = subprocess.Popen([sys.executable, "-m", "noisyfer.cli.main", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
