"""Sweeps through a scheduler: each point is a submitit job (``--executor local`` on this machine,
``--executor slurm`` as one Slurm job array), trained by the same :class:`~noisyfer.sweep.runner.PointAttempt`
as ``--executor process``: same run directory, lock, log and failure record per point.

Resuming is the run directory's business, not the scheduler's: a job plans its point again when it
starts (skip if finished, resume from the last checkpoint if begun, else start), so resubmitting a sweep
submits only its unfinished points, and a job that runs twice does no harm. When the scheduler warns a
job (Slurm: ``USR2`` 90 s before the time limit or on preemption; the local executor: before ``--time``),
submitit calls :meth:`PointJob.checkpoint`: the training process is stopped (its last epoch's checkpoint
stays), the same point is written back as the job's pickle and the job requeued; the requeued job
resumes the run. A point is requeued at most ``--requeues`` times for its time limit (preemptions do not
count).

>>> from noisyfer.sweep import SweepSpec                                                         # doctest: +SKIP
>>> from noisyfer.sweep.scheduler import SchedulerOptions, submit_sweep                          # doctest: +SKIP
>>> opts = SchedulerOptions(executor="slurm", time="4:00:00", partition="gpu", gpus=1, cpus=8)   # doctest: +SKIP
>>> submit_sweep(SweepSpec.from_args(["method=ce,scn", "seed=0,1"]), "sweeps/demo", options=opts)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from submitit.core.utils import DelayedSubmission
from submitit.helpers import Checkpointable

from ..errors import UserError
from .planning import Planned, plan_sweep
from .runner import PointAttempt, outcome_line
from .scheduler_options import SchedulerOptions
from .spec import GridPoint, SweepSpec

__all__ = ["PointJob", "SchedulerOptions", "sbatch_script", "submit_sweep"]

SUBMISSIONS_FILE = "submissions.jsonl"


def _preemption_signal() -> int:
    from submitit import JobEnvironment

    return int(getattr(signal, "SIG" + JobEnvironment.USR_SIG))


def _training_process_setup() -> Callable[[], None]:
    """What the training process of a job does before it starts: ignore the scheduler's warning signal
    (Slurm sends it to every process of the job; the job stops the training itself), and end when the job's
    process ends (Linux), so that a cancelled or killed job leaves no training behind."""
    warning = _preemption_signal()
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None

    def setup() -> None:
        signal.signal(warning, signal.SIG_IGN)
        if prctl is not None:
            prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return setup


class PointJob(Checkpointable):
    """One point of a sweep as a submitit job (picklable: the point, its configuration, where it runs).

    Calling it trains the point (see the module docstring) and returns ``{"name", "outcome", "exit_status"}``,
    ``outcome`` being ``finished``, ``failed``, ``skipped`` (finished meanwhile) or ``busy`` (another job
    trains it).
    """

    def __init__(self, sweep_dir: str | Path, point: GridPoint, config: dict, *, device: str | None = None,
                 threads: int | None = None):
        self.sweep_dir = str(Path(sweep_dir).resolve())
        self.point, self.config, self.device, self.threads = point, config, device, threads
        self._attempt: PointAttempt | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_attempt": None}  # the running attempt belongs to this process only

    def _env(self) -> dict:
        env = dict(os.environ)
        threads = self.threads or os.environ.get("SLURM_CPUS_PER_TASK")
        if threads and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = str(threads)  # the job's CPUs, not every core of the node
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def __call__(self) -> dict:
        sweep_dir = Path(self.sweep_dir)
        item = Planned(self.point, self.config, sweep_dir / "runs" / self.point.name, "start", "")
        attempt = PointAttempt(sweep_dir, item, device=self.device, env=self._env(),
                               preexec=_training_process_setup())
        begun = attempt.begin()
        if begun != "started":
            return {"name": self.point.name, "outcome": "skipped" if begun == "skip" else "busy", "exit_status": None}
        print(f"noisyfer: {attempt.item.action} {self.point.name} ({attempt.item.reason}); log {attempt.log_path}",
              flush=True)
        self._attempt = attempt
        try:
            outcome = attempt.wait()
        finally:
            attempt.stop()  # after an exception (a cancelled job): the training ends with the job
            self._attempt = None
        return {"name": self.point.name, "outcome": outcome, "exit_status": attempt.process.returncode}

    def checkpoint(self) -> DelayedSubmission:
        """Called by submitit when the scheduler warns the job: stop the training and resubmit this point."""
        if self._attempt is not None:
            self._attempt.note("the scheduler stops the job (time limit or preemption): training stopped, "
                               "the point is requeued and resumes from its last checkpoint")
            self._attempt.stop()
        return DelayedSubmission(PointJob(self.sweep_dir, self.point, self.config, device=self.device,
                                          threads=self.threads))


@contextlib.contextmanager
def _sigint_not_ignored():
    """submitit cancels a local job with SIGINT: its processes must not inherit an ignored SIGINT (as a
    command started in the background of a script does)."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _submitit_command(folder: Path) -> str:
    """The command submitit's Slurm executor runs in each array task (its ``_submitit_command_str``)."""
    return " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(folder))])


def sbatch_script(options: SchedulerOptions, sweep_dir: str | Path, *, count: int) -> str:
    """The sbatch file submitit writes for an array of ``count`` points with these options."""
    from submitit.slurm.slurm import _make_sbatch_string

    folder = options.folder(Path(sweep_dir))
    params = options.slurm_parameters(job_name=_job_name(sweep_dir), count=count)
    if count > 1:
        params["map_count"] = count
    return _make_sbatch_string(command=_submitit_command(folder), folder=folder, **params)


def _job_name(sweep_dir: str | Path) -> str:
    return f"noisyfer-{Path(sweep_dir).resolve().name}"


def _record_submission(sweep_dir: Path, executor: str, jobs: dict[str, str]) -> None:
    line = json.dumps({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "executor": executor, "jobs": jobs})
    with open(sweep_dir / SUBMISSIONS_FILE, "a") as fh:
        fh.write(line + "\n")


def submit_sweep(spec: SweepSpec, sweep_dir: str | Path, *, options: SchedulerOptions,
                 shard: tuple[int, int] = (1, 1), devices: tuple[str, ...] = (), dry_run: bool = False,
                 echo: Callable[[str], None] = print) -> dict:
    """Run (``local``: and wait for) or submit (``slurm``) this shard's unfinished points as submitit jobs.

    Returns the counts per outcome (``local``), or ``{"submitted": N}`` (``slurm``). ``SWEEP_DIR/submissions.jsonl``
    records each submission's job id per point.

    Raises
    ------
    UserError
        As :func:`~noisyfer.sweep.planning.plan_sweep`; ``slurm``: no Slurm here, or sbatch refused the job.
    KeyboardInterrupt
        ``local``, on Ctrl-C or SIGTERM, after cancelling the running jobs (run again to continue).
    """
    if options.executor not in ("local", "slurm"):
        raise UserError(f"--executor: submit_sweep runs local or slurm, got '{options.executor}'")
    if options.executor == "slurm" and len(devices) > 1:
        raise UserError("--device: Slurm gives each job its GPUs; give one device for every point (e.g. cuda), "
                        f"not a list ({','.join(devices)})")
    sweep_dir = Path(sweep_dir).resolve()
    plans = plan_sweep(spec, sweep_dir, shard=shard, dry_run=dry_run, echo=echo)
    queue = [p for p in plans if p.action != "skip"]
    if dry_run:
        if options.executor == "slurm" and queue:
            echo(f"\nsbatch file submitit would submit for the {len(queue)} unfinished point(s):\n"
                 f"{sbatch_script(options, sweep_dir, count=len(queue))}")
        return {"planned": len(plans)}
    skipped = len(plans) - len(queue)
    if not queue:
        echo("nothing to submit: every point is finished")
        return {"skipped": skipped, "submitted": 0} if options.executor == "slurm" else {"skipped": skipped}
    if options.executor == "slurm":
        return {"skipped": skipped, **_submit_slurm(queue, sweep_dir, options, devices, echo)}
    return _run_local(queue, sweep_dir, options, devices, echo, skipped=skipped)


def _submit_slurm(queue: list[Planned], sweep_dir: Path, options: SchedulerOptions, devices: tuple[str, ...],
                  echo: Callable[[str], None]) -> dict:
    import submitit
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    folder = options.folder(sweep_dir)
    try:
        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.max_requeues)
    except RuntimeError:
        raise UserError("--executor slurm: no 'srun' on PATH, so this is no Slurm machine; submit from a login "
                        "node of the cluster (or use --executor local, or --shard I/N on each machine)") from None
    executor.update_parameters(**options.slurm_parameters(job_name=_job_name(sweep_dir), count=len(queue)))
    device = devices[0] if devices else None
    try:
        jobs = executor.submit_array([PointJob(sweep_dir, p.point, p.config, device=device) for p in queue])
    except (FailedJobError, FailedSubmissionError) as exc:
        message = " ".join(str(exc).split())
        raise UserError(f"--executor slurm: sbatch refused the job array: {message[:400]}") from None
    ids = {p.point.name: job.job_id for p, job in zip(queue, jobs)}
    _record_submission(sweep_dir, "slurm", ids)
    array_id = jobs[0].job_id.split("_")[0]
    echo(f"submitted {len(jobs)} point(s) as Slurm job {array_id}"
         + (f" (array {jobs[0].job_id}..{jobs[-1].job_id}, at most {min(options.jobs or len(jobs), len(jobs))} at once)"
            if len(jobs) > 1 else ""))
    for p, job in zip(queue, jobs):
        echo(f"  {job.job_id:<12} {p.action:<6} {p.point.name}  ({p.reason})")
    echo(f"job logs: {folder}; training logs: {sweep_dir / 'logs'}; watch: squeue -j {array_id}")
    echo(f"when they are done: noisyfer sweep --collect --out {sweep_dir}  (or noisyfer report {sweep_dir}); "
         "the same submit command again submits only the unfinished points")
    return {"submitted": len(jobs)}


def _run_local(queue: list[Planned], sweep_dir: Path, options: SchedulerOptions, devices: tuple[str, ...],
               echo: Callable[[str], None], *, skipped: int) -> dict:
    import submitit
    from submitit.core.utils import UncompletedJobError

    jobs_at_once = options.jobs or 1
    executor = submitit.LocalExecutor(folder=options.folder(sweep_dir), max_num_timeout=options.max_requeues)
    executor.update_parameters(**options.local_parameters())
    threads = max(1, (os.cpu_count() or 1) // jobs_at_once) if jobs_at_once > 1 else None
    counts = {"skipped": skipped, "finished": 0, "failed": 0, "busy": 0}
    running: dict[int, tuple] = {}
    free_slots = list(range(jobs_at_once))
    total, submitted = len(queue), 0
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        while queue or running:
            while queue and free_slots:
                item, slot = queue.pop(0), free_slots.pop(0)
                device = devices[slot % len(devices)] if devices else None
                with _sigint_not_ignored():
                    job = executor.submit(PointJob(sweep_dir, item.point, item.config, device=device,
                                                   threads=threads))
                _record_submission(sweep_dir, "local", {item.point.name: job.job_id})
                submitted += 1
                running[slot] = (job, item)
                echo(f"[{submitted}/{total}] {item.action} {item.point.name}{f' on {device}' if device else ''}  "
                     f"({item.reason}; local job {job.job_id}; log {sweep_dir / 'logs' / (item.point.name + '.log')})")
            time.sleep(0.5)
            for slot, (job, item) in list(running.items()):
                if not job.done():
                    continue
                del running[slot]
                free_slots.append(slot)
                try:
                    result = job.result()
                except UncompletedJobError as exc:
                    counts["failed"] += 1
                    lines = [line for line in str(exc).splitlines() if line.strip()]
                    echo(f"  FAILED {item.point.name} (job {job.job_id}: {lines[-1] if lines else exc}); "
                         f"see {job.paths.stderr}")
                    continue
                counts[result["outcome"]] += 1
                if result["outcome"] in ("finished", "failed"):
                    log = sweep_dir / "logs" / f"{item.point.name}.log"
                    echo(outcome_line(item.point.name, result["outcome"], item.run_dir, result["exit_status"], log))
                elif result["outcome"] == "busy":
                    echo(f"  busy   {item.point.name} (another sweep process is training it)")
    except KeyboardInterrupt:
        for job, _ in running.values():
            job.cancel()  # SIGINT: the job stops its training process, and the job's controller the job
        deadline = time.time() + 60
        while any(not job.done() for job, _ in running.values()) and time.time() < deadline:
            time.sleep(0.2)
        left = [job.job_id for job, _ in running.values() if not job.done()]
        if left:
            echo(f"noisyfer: local job(s) {', '.join(left)} still running after 60 s")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return counts
