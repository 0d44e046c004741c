"""What a sweep asks of a scheduler (``noisyfer sweep --executor local|slurm``): the resources of one point's
job, checked here so that a mistake is a one-line error naming the flag before anything is submitted.

>>> opts = SchedulerOptions(executor="slurm", time="4:00:00", partition="gpu", gpus=1, cpus=8, mem="32G")
>>> opts.time_minutes, opts.slurm_parameters(job_name="noisyfer-demo", count=6)["mem"]
(240, '32G')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

__all__ = ["EXECUTORS", "SchedulerOptions", "parse_memory", "parse_slurm_items", "parse_time_minutes"]

#: ``process``: this process starts each point's training (the default, ``--jobs`` at a time); ``local``:
#: each point is a submitit job on this machine; ``slurm``: the points are one Slurm job array.
EXECUTORS = ("process", "local", "slurm")
#: sbatch settings submitit writes itself (the array, its log files, the warning signal): not for ``--slurm``.
_SUBMITIT_OWNED = ("array", "output", "error", "open-mode", "signal", "wrap")
#: sbatch settings with their own flag.
_OWN_FLAG = {"partition": "--partition", "time": "--time", "gpus-per-node": "--gpus", "cpus-per-task": "--cpus",
             "mem": "--mem", "account": "--account", "qos": "--qos", "constraint": "--constraint"}
_SLURM_ONLY = ("partition", "gpus", "cpus", "mem", "account", "qos", "constraint", "slurm")
_SCHEDULER_ONLY = ("time", "setup", "log_dir", "requeues")
#: a local job without --time: no limit in practice (submitit's local default would stop it after 2 minutes)
_NO_LIMIT_MINUTES = 60 * 24 * 365


def parse_time_minutes(text: str) -> int:
    """A Slurm time limit in whole minutes (seconds rounded up): ``90``, ``90:30`` (min:s), ``4:00:00``,
    ``2-00`` (days-hours), ``2-12:00`` or ``1-00:00:00``."""
    value = str(text).strip()
    patterns = (r"(?P<m>\d+)", r"(?P<m>\d+):(?P<s>\d+)", r"(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)", r"(?P<d>\d+)-(?P<h>\d+)",
                r"(?P<d>\d+)-(?P<h>\d+):(?P<m>\d+)", r"(?P<d>\d+)-(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)")
    for pattern in patterns:
        match = re.fullmatch(pattern, value)
        if match:
            parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
            seconds = ((parts.get("d", 0) * 24 + parts.get("h", 0)) * 60 + parts.get("m", 0)) * 60 + parts.get("s", 0)
            if seconds > 0:
                return math.ceil(seconds / 60)
    raise UserError(f"--time: expected a time limit of one point as minutes or [D-]H:MM:SS (e.g. 90, 4:00:00, "
                    f"1-12:00:00), got '{text}'")


def parse_memory(text: str) -> str:
    """A memory size for sbatch ``--mem``: ``32G``, ``32GB``, ``500M``, ``1.5G`` (-> ``1536M``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])B?\s*", str(text), flags=re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--mem: expected the memory of one point with a unit (e.g. 32G, 500M), got '{text}'")
    amount, unit = float(match.group(1)), match.group(2).upper()
    units = "KMGT"
    while amount != int(amount) and unit != "K":  # sbatch takes whole numbers: 1.5G is 1536M
        amount, unit = amount * 1024, units[units.index(unit) - 1]
    return f"{math.ceil(amount)}{unit}"


def parse_slurm_items(items: list[str]) -> dict:
    """``--slurm KEY=VALUE`` (or ``--slurm KEY`` for a flag without value) -> extra sbatch settings."""
    extra: dict = {}
    for item in items:
        key, has_value, value = str(item).partition("=")
        key = key.strip().lstrip("-").replace("_", "-")
        if not key or (has_value and not value.strip()):
            raise UserError(f"--slurm: expected an sbatch setting as KEY=VALUE or KEY (e.g. mail-type=END, "
                            f"requeue), got '{item}'")
        if key in _SUBMITIT_OWNED:
            raise UserError(f"--slurm {item}: submitit sets sbatch --{key} itself (the array, its logs and the "
                            "warning signal); leave it out")
        if key in _OWN_FLAG:
            raise UserError(f"--slurm {item}: use {_OWN_FLAG[key]}")
        if key in extra:
            raise UserError(f"--slurm: {key} given twice")
        extra[key] = value.strip() if has_value else True
    return extra


def _count(flag: str, value, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{flag}: expected an integer >= {minimum}, got {value!r}")
    return value


@dataclass
class SchedulerOptions:
    """The ``--executor`` and its job settings (see ``noisyfer sweep --help``); invalid values raise
    :class:`~noisyfer.errors.UserError` naming the flag."""

    executor: str = "process"
    jobs: int | None = None
    time: str | None = None
    partition: str | None = None
    gpus: int | None = None
    cpus: int | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    slurm: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    log_dir: str | None = None
    requeues: int | None = None

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise UserError(f"--executor: expected one of {', '.join(EXECUTORS)}, got '{self.executor}'")
        given = [name for name in (*_SLURM_ONLY, *_SCHEDULER_ONLY) if getattr(self, name) not in (None, [])]
        for name in given:
            flag = "--" + name.replace("_", "-")
            if name in _SLURM_ONLY and self.executor != "slurm":
                raise UserError(f"{flag}: a Slurm setting; it needs --executor slurm (got --executor {self.executor})")
            if self.executor == "process":
                raise UserError(f"{flag}: a setting of the submitit executors; it needs --executor local or slurm")
        _count("--jobs", self.jobs, 1)
        _count("--gpus", self.gpus, 0)
        _count("--cpus", self.cpus, 1)
        _count("--requeues", self.requeues, 0)
        self.time_minutes = parse_time_minutes(self.time) if self.time is not None else None
        self.memory = parse_memory(self.mem) if self.mem is not None else None
        self.extra = parse_slurm_items(self.slurm)
        for name in ("partition", "account", "qos", "constraint"):
            value = getattr(self, name)
            if value is not None and (not str(value).strip() or any(c.isspace() for c in str(value))):
                raise UserError(f"--{name}: expected a Slurm {name} name without spaces, got '{value}'")
        if self.executor == "slurm" and self.time_minutes is None:
            raise UserError("--time: required with --executor slurm: the time limit of one point's job as minutes "
                            "or [D-]H:MM:SS (e.g. 4:00:00); a point still running then is requeued and resumes")

    def folder(self, sweep_dir: Path) -> Path:
        """submitit's folder (job pickles, its stdout/stderr per job): ``--log-dir`` or ``SWEEP_DIR/submitit``."""
        return Path(self.log_dir).resolve() if self.log_dir else Path(sweep_dir).resolve() / "submitit"

    @property
    def max_requeues(self) -> int:
        return 3 if self.requeues is None else self.requeues

    def local_parameters(self) -> dict:
        """``LocalExecutor.update_parameters`` arguments."""
        params = {"timeout_min": self.time_minutes or _NO_LIMIT_MINUTES}
        if self.setup:
            params["setup"] = list(self.setup)
        return params

    def slurm_parameters(self, *, job_name: str, count: int) -> dict:
        """``SlurmExecutor.update_parameters`` arguments for an array of ``count`` points."""
        params = {"job_name": job_name, "time": self.time_minutes, "partition": self.partition,
                  "gpus_per_node": self.gpus or None, "cpus_per_task": self.cpus, "mem": self.memory,
                  "account": self.account, "qos": self.qos, "constraint": self.constraint,
                  # --jobs caps the points running at once (the array's %N); default all of them
                  "array_parallelism": min(self.jobs or count, count) if count else 1,
                  "setup": list(self.setup) or None, "additional_parameters": dict(self.extra) or None}
        return {k: v for k, v in params.items() if v is not None}
