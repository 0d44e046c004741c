"""Starting and continuing runs: :func:`train` creates a run directory and trains it, :func:`resume`
continues one from its last intact checkpoint (the same numbers as an uninterrupted run)."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig, load_yaml, parse_override, resolve_config, set_dotted
from ..errors import RunInterrupted, UserError
from . import distributed
from .provenance import absolute_paths, check_config_identity, given_paths
from .rundir import RunDirectory, default_run_name
from .trainer import RunResult, Trainer, _note

__all__ = ["RESUME_OVERRIDES", "resume", "train"]


RESUME_OVERRIDES = ("train.epochs", "device", "resume")


def train(cfg: RunConfig) -> RunResult:
    """Train a new run (``cfg.resume`` unset) or continue the run directory ``cfg.resume``.

    Paths in the configuration are stored absolute in ``config.yaml`` (with the path as given in a
    comment). The run directory is locked while this process trains it. Launched by ``torchrun``
    (``WORLD_SIZE`` > 1), every rank trains and rank 0 alone writes the run directory
    (:mod:`noisyfer.engine.distributed`).
    """
    if cfg.resume:
        return resume(cfg.resume)
    with distributed.process_group():
        cfg, given = absolute_paths(cfg)
        noise_kind = "file" if cfg.noise.file else cfg.noise.kind
        name = cfg.name or default_run_name(cfg.method, cfg.data.name, noise_kind, cfg.noise.rate, cfg.seed)
        created: list[RunDirectory] = []

        def create() -> Path:
            run = RunDirectory.create(cfg.out, name)
            run.lock()
            created.append(run)
            run.write_config(cfg.to_yaml(given=given))
            return run.path

        path = distributed.from_main(create)
        run = created[0] if created else RunDirectory(path)
        try:
            trainer = Trainer(cfg, run, resuming=False)
        except BaseException:  # bad data, Ctrl-C while decoding: nothing trained, leave no directory behind
            if created:
                run.unlock()
                run.discard()
            raise
        try:
            if created:
                _note(f"run directory {run.path.resolve()}")
            return trainer.fit()
        except KeyboardInterrupt:
            raise RunInterrupted(run.path.resolve()) from None
        finally:
            run.unlock()


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> RunResult:
    """Continue a killed run from its last intact checkpoint; only ``train.epochs`` and ``device`` may change.

    Refuses (without writing anything) a ``config.yaml`` edited since the checkpoint was written,
    data that changed since the run started, and a run that another process is training. In a
    distributed run rank 0 reads the run directory and sends the configuration and the checkpoint
    to the other ranks; any number of ranks may continue it (see the README).
    """
    with distributed.process_group():
        locked: list[RunDirectory] = []

        def prepare() -> tuple:
            run = RunDirectory.existing(run_dir)
            run.lock()
            locked.append(run)
            text = run.config.read_text()
            tree = load_yaml(run.config)
            tree["resume"] = None
            changed = False
            for item in overrides or []:
                key, value = parse_override(item)
                if key == "resume":
                    continue
                if key not in RESUME_OVERRIDES:
                    raise UserError(f"'{item}': a resumed run keeps its configuration; only "
                                    f"{', '.join(RESUME_OVERRIDES[:2])} may change")
                set_dotted(tree, key, value)
                changed = True
            cfg = resolve_config(tree)
            for path in run.remove_stale_temporaries():
                _note(f"removed {path} (left by a write that was interrupted)")
            found = run.latest_intact_checkpoint(max_epoch=len(run.read_metrics()))
            state = None
            if found is not None:
                epoch, state, problems = found
                for problem in problems:
                    _note(f"{problem}; resuming from {run.checkpoint_path(epoch).name} instead")
                check_config_identity(state, cfg, where=run.config)
                _note_world_size(state)
            return run.path, cfg, state, changed, text

        try:
            path, cfg, state, changed, text = distributed.from_main(prepare)
            run = locked[0] if locked else RunDirectory(path)
            trainer = Trainer(cfg, run, resuming=True, state=state)
            if changed and locked:
                run.write_config(cfg.to_yaml(given=given_paths(text)))
            if locked:
                _note(f"run directory {run.path.resolve()}")
            return trainer.fit()
        except KeyboardInterrupt:
            raise RunInterrupted(Path(run_dir).resolve()) from None
        finally:
            for run in locked:
                run.unlock()


def _note_world_size(state: dict) -> None:
    before, now = int(state.get("world_size", 1)), distributed.launched_ranks()
    if before != now:
        _note(f"the run trained on {before} process(es) and continues on {now}: the same global batch and "
              "updates, equal up to floating-point rounding (batch-norm statistics per process change "
              "unless train.sync_bn=true)")
