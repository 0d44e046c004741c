"""Issue 16, sweeps on a scheduler: ``noisyfer sweep --executor local|slurm`` runs each point as a submitit job
that trains through the sweep's own point runner; resubmitting skips finished points and a job warned by
its scheduler stops its training and is requeued, the requeued job resuming the run.

No Slurm cluster is reachable from CI: the Slurm tests put fake ``sbatch``/``srun``/``scontrol`` commands on
PATH (recording what submitit asks of them) and run an array task's command themselves, with the
environment Slurm gives it, as Slurm would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from noisyfer.cli.main import main
from noisyfer.data.format import save_dataset
from noisyfer.sweep.scheduler_options import SchedulerOptions, parse_memory, parse_time_minutes

from .conftest import make_tiny_split
from .test_sweep_resume import _processes_mentioning


@pytest.fixture(scope="module")
def faces16(tmp_path_factory):
    """64 training and 28 test faces of 16 px: a point trains an epoch in well under a second of CPU."""
    root = tmp_path_factory.mktemp("faces16") / "data"
    save_dataset({"train": make_tiny_split(64, size=16, seed=1), "test": make_tiny_split(28, size=16, seed=2)}, root)
    return root


def _grid(data: Path, *, epochs: int) -> list[str]:
    return ["data=noisyfer", f"data.root={data}", "model.backbone=resnet_tiny", "train.batch_size=16",
            "train.lr=0.003", f"train.epochs={epochs}", "method=ce", "seed=0,1"]


def _wait_for(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = 300.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"ended (exit status {proc.returncode}) before {what}")
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _summary(run: Path) -> dict:
    try:
        return json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def _epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _parent_of_process_running(text: str) -> int | None:
    """The parent pid of the process whose command line contains ``text`` (a point's training process)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return None


# -- options ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, minutes", [("90", 90), ("90:30", 91), ("4:00:00", 240), ("2-00", 2880),
                                           ("1-12:30", 2190), ("1-00:00:01", 1441)])
def test_time_limits_read_as_slurm_reads_them(text, minutes):
    assert parse_time_minutes(text) == minutes


@pytest.mark.parametrize("text, mem", [("32G", "32G"), ("32gb", "32G"), ("500M", "500M"), ("1.5G", "1536M")])
def test_memory_sizes_become_whole_sbatch_sizes(text, mem):
    assert parse_memory(text) == mem


@pytest.mark.parametrize("flags, message", [
    (["--executor", "slurm"], "--time: required with --executor slurm"),
    (["--executor", "slurm", "--time", "4h"], "--time: expected a time limit of one point as minutes or [D-]H:MM:SS"),
    (["--executor", "slurm", "--time", "0"], "got '0'"),
    (["--executor", "slurm", "--time", "60", "--mem", "32"], "--mem: expected the memory of one point with a unit"),
    (["--executor", "slurm", "--time", "60", "--gpus", "-1"], "--gpus: expected an integer >= 0, got -1"),
    (["--executor", "slurm", "--time", "60", "--jobs", "0"], "--jobs: expected an integer >= 1, got 0"),
    (["--executor", "local", "--partition", "gpu"], "--partition: a Slurm setting; it needs --executor slurm"),
    (["--time", "60"], "--time: a setting of the submitit executors; it needs --executor local or slurm"),
    (["--executor", "slurm", "--time", "60", "--slurm", "array=0-9"], "submitit sets sbatch --array itself"),
    (["--executor", "slurm", "--time", "60", "--slurm", "partition=gpu"], "--slurm partition=gpu: use --partition"),
    (["--executor", "slurm", "--time", "60", "--slurm", "mail-type="], "--slurm: expected an sbatch setting"),
    (["--executor", "slurm", "--time", "60", "--device", "cuda:0,cuda:1"], "--device: Slurm gives each job its GPUs"),
    (["--executor", "slurm", "--time", "60", "--report"], "--report: with --executor slurm the runs finish later"),
    (["--executor", "cluster"], "argument --executor: invalid choice: 'cluster'"),
])
def test_scheduler_options_are_refused_naming_the_flag(flags, message, tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", *_grid(tiny_data_dir, epochs=1), "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # refused before anything is written or submitted


def test_the_slurm_dry_run_prints_the_sbatch_file_of_the_array(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", *_grid(tiny_data_dir, epochs=1), "noise.kind=symmetric", "noise.rate=0.2,0.4",
                 "--out", str(out), "--executor", "slurm", "--dry-run", "--time", "1-00:00:00", "--partition", "gpu",
                 "--gpus", "1", "--cpus", "8", "--mem", "32G", "--account", "lab", "--qos", "high",
                 "--constraint", "a100", "--slurm", "mail-type=END", "--slurm", "requeue", "--jobs", "3",
                 "--setup", "module load cuda", "--log-dir", str(tmp_path / "jobs")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "4 points, shard 1/1 has 4: 4 to start" in printed
    lines = set(printed.splitlines())
    for flag in ("--array=0-3%3", "--time=1440", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--mem=32G", "--account=lab", "--qos=high", "--constraint=a100", "--mail-type=END", "--requeue",
                 "--signal=USR2@90", f"--output={tmp_path / 'jobs'}/%A_%a_0_log.out", f"--job-name=noisyfer-sweep"):
        assert f"#SBATCH {flag}" in lines, flag
    assert "module load cuda" in lines
    assert f"{sys.executable} -u -m submitit.core._submit {tmp_path / 'jobs'}" in printed
    assert not out.exists() and not (tmp_path / "jobs").exists()


# -- local executor -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_local_executor_runs_the_grid_requeues_a_warned_point_and_resubmission_skips(faces16, tmp_path, capsys):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "noisyfer.cli.main", "sweep", *_grid(faces16, epochs=6), "--out", str(out),
               "--executor", "local", "--jobs", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seed0 = out / "runs" / "seed-0"
    try:
        _wait_for(lambda: (seed0 / "checkpoints" / "epoch_001.pt").is_file(), "seed-0's first checkpoint", proc)
        job = _parent_of_process_running(str(out / "points" / "seed-0.yaml"))
        assert job is not None
        # what the local executor does before --time (and Slurm before its limit, or on preemption)
        os.kill(job, signal.SIGUSR2)
        printed, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, printed
    assert "2 to start" in printed and "runs: 0 skipped, 2 finished, 0 failed, 0 busy" in printed
    log = (out / "logs" / "seed-0.log").read_text()
    assert "the scheduler stops the job" in log and "resume (" in log  # stopped, requeued, resumed
    assert _epochs(seed0) == [1, 2, 3, 4, 5, 6] and _summary(seed0)["status"] == "finished"
    assert _summary(out / "runs" / "seed-1")["epochs_done"] == 6
    requeued = [p for p in (out / "submitit").glob("*_log.out") if "Requeued job" in p.read_text()]
    assert len(requeued) == 1
    submitted = [json.loads(line) for line in (out / "submissions.jsonl").read_text().splitlines()]
    assert [list(s["jobs"]) for s in submitted] == [["seed-0"], ["seed-1"]]
    assert {s["executor"] for s in submitted} == {"local"}
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",finished," in r for r in rows[1:])

    assert main(command[3:]) == 0
    again = capsys.readouterr().out
    assert "0 to start, 0 to resume, 2 to skip" in again and "nothing to submit" in again
    assert len((out / "submissions.jsonl").read_text().splitlines()) == 2

    assert main(["report", str(out), "--no-features"]) == 0
    assert (out / "report.html").is_file() and "seed" in (out / "report.md").read_text()


@pytest.mark.slow
def test_terminating_a_local_sweep_ends_its_jobs_and_their_training(faces16, tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "noisyfer.cli.main", "sweep", *_grid(faces16, epochs=5000), "--out", str(out),
               "--executor", "local", "--jobs", "2"]
    # started in the background of a script: SIGINT is ignored, and submitit cancels a local job with SIGINT
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        _wait_for(lambda: all(_parent_of_process_running(str(out / "points" / f"seed-{s}.yaml")) for s in (0, 1)),
                  "both points training", proc)
        proc.send_signal(signal.SIGTERM)
        # the jobs share the command's output: it ends (EOF) only when they have ended too
        printed, _ = proc.communicate(timeout=180)
        assert proc.returncode == 130 and "run the same command again to continue" in printed
        _wait_for(lambda: _processes_mentioning(str(out)) == [], "the jobs and their training to end", timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


# -- slurm, against fake sbatch / srun / scontrol -----------------------------------------------------------

def _fake_slurm(bin_dir: Path, record: Path) -> None:
    bin_dir.mkdir()
    record.mkdir()
    scripts = {
        "sbatch": f'n=$(( $(cat "{record}/count" 2>/dev/null || echo 4241) + 1 )); echo $n > "{record}/count"\n'
                  f'cp "$1" "{record}/sbatch_$n.sh"; echo "$@" >> "{record}/sbatch_args"\n'
                  'echo "Submitted batch job $n"\n',
        "scontrol": f'echo "$@" >> "{record}/scontrol"\n',
        "srun": "exit 0\n",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)


def _array_task(folder: Path, array_id: str, task: int, bin_dir: Path, log: Path) -> subprocess.Popen:
    """Run one array task's command with the environment Slurm gives it (what the sbatch file's srun runs)."""
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SUBMITIT_EXECUTOR": "slurm",
           "SLURM_JOB_ID": str(int(array_id) + 10 + task), "SLURM_ARRAY_JOB_ID": array_id,
           "SLURM_ARRAY_TASK_ID": str(task), "SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
           "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1", "SLURM_CPUS_PER_TASK": "1"}
    with open(log, "a") as fh:
        return subprocess.Popen([sys.executable, "-u", "-m", "submitit.core._submit", str(folder)], env=env,
                                stdout=fh, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_slurm_submits_an_array_whose_task_requeues_and_resumes(faces16, tmp_path, monkeypatch, capsys):
    from submitit.core.utils import DelayedSubmission, JobPaths, pickle_load

    bin_dir, record, out = tmp_path / "bin", tmp_path / "record", tmp_path / "sweep"
    _fake_slurm(bin_dir, record)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    submit = ["sweep", *_grid(faces16, epochs=6), "--out", str(out), "--executor", "slurm", "--time", "30",
              "--partition", "gpu", "--gpus", "1"]
    assert main(submit) == 0
    printed = capsys.readouterr().out
    assert "submitted 2 point(s) as Slurm job 4242 (array 4242_0..4242_1, at most 2 at once)" in printed
    assert (record / "sbatch_args").read_text().split()[0].endswith(".sh")
    script = (record / "sbatch_4242.sh").read_text().splitlines()
    assert {"#SBATCH --array=0-1%2", "#SBATCH --partition=gpu", "#SBATCH --time=30",
            "#SBATCH --gpus-per-node=1"} <= set(script)
    assert json.loads((out / "submissions.jsonl").read_text())["jobs"] == {"seed-0": "4242_0", "seed-1": "4242_1"}
    folder = out / "submitit"
    assert (folder / "4242_0_submitted.pkl").is_file() and (folder / "4242_1_submitted.pkl").is_file()
    assert not (out / "runs").exists()  # nothing trains on the submitting machine

    # Slurm starts array task 0; near its time limit it sends USR2
    seed0, task_log = out / "runs" / "seed-0", tmp_path / "task0.log"
    task = _array_task(folder, "4242", 0, bin_dir, task_log)
    try:
        _wait_for(lambda: (seed0 / "checkpoints" / "epoch_001.pt").is_file(), "the first checkpoint", task)
        task.send_signal(signal.SIGUSR2)
        task.wait(timeout=120)
    finally:
        if task.poll() is None:
            task.kill()
    assert (record / "scontrol").read_text().split() == ["requeue", "4242_0"], task_log.read_text()
    assert _summary(seed0).get("status") != "finished"
    assert _parent_of_process_running(str(out / "points" / "seed-0.yaml")) is None  # the training ended too
    resubmitted = DelayedSubmission.load(folder / "4242_0_submitted.pkl")
    assert resubmitted.function.point.name == "seed-0" and resubmitted._timeout_countdown == 3  # not a timeout

    # the requeued task runs the same command again: it resumes the run from its checkpoint
    task = _array_task(folder, "4242", 0, bin_dir, task_log)
    assert task.wait(timeout=600) == 0, task_log.read_text()
    assert _epochs(seed0) == [1, 2, 3, 4, 5, 6] and _summary(seed0)["status"] == "finished"
    assert "resume (" in (out / "logs" / "seed-0.log").read_text()
    assert pickle_load(JobPaths(folder, job_id="4242_0", task_id=0).result_pickle) == ("success", {"name": "seed-0", "outcome": "finished",
                                                                     "exit_status": 0})

    # submitting again submits only the unfinished point (one job, no array)
    assert main(submit) == 0
    again = capsys.readouterr().out
    assert "1 to start, 0 to resume, 1 to skip" in again and "submitted 1 point(s) as Slurm job 4243" in again
    assert not any(line.startswith("#SBATCH --array") for line in (record / "sbatch_4243.sh").read_text().splitlines())
    assert json.loads((out / "submissions.jsonl").read_text().splitlines()[-1])["jobs"] == {"seed-1": "4243"}

    # results are collected from the run directories as for any sweep
    assert main(["sweep", "--collect", "--out", str(out)]) == 0
    rows = (out / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["seed-0", "seed-1"]
    assert ",finished," in rows[1] and ",missing," in rows[2]


def test_options_object_rejects_a_slurm_setting_for_the_process_executor():
    with pytest.raises(Exception, match="--qos: a Slurm setting"):
        SchedulerOptions(executor="process", qos="high")
