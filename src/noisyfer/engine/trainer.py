"""The training loop every method runs in.

:class:`Trainer` builds the experiment, then for each epoch: the method's ``on_epoch_start``; for each
batch (dataset indices included) the method's ``training_step``, backward, optimizer step(s); the
method's ``on_epoch_end``; evaluation of ``predict`` on the test split; metrics, TensorBoard,
per-sample records, summary and a checkpoint. A run killed at any point resumes from its last
checkpoint and reproduces the uninterrupted run's numbers exactly (same machine, same config).
"""

from __future__ import annotations

import io
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import RunConfig
from ..errors import TrainingDiverged, UserError
from ..methods.base import Method, TrainingSetup
from . import distributed
from .build import Experiment, build_experiment, make_training_labels, resolve_device
from .loader import TensorLoader
from .metrics import RunningAgreement, classification_report
from .optim import Schedule, build_optimizers
from .provenance import check_data_fingerprint, config_hash, config_identity, data_fingerprint
from .rundir import RunDirectory, atomic_write_bytes, dumps, rng_state, set_rng_state
from .summary import summarize


@dataclass
class RunResult:
    run_dir: Path
    summary: dict


class Precision:
    """Mixed precision policy: bf16 autocast (or fp16 with loss scaling) on CUDA when ``train.amp`` allows."""

    def __init__(self, mode: str, device: torch.device):
        enabled = mode == "on" or (mode == "auto" and device.type == "cuda")
        self.dtype = None
        if enabled:
            if device.type == "cuda":
                self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            else:
                self.dtype = torch.bfloat16
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def evaluate(method: Method, loader: TensorLoader, precision: Precision, augment) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes and logits (float32, CPU) of ``method`` over ``loader`` in order."""
    method.eval()
    logits = []
    with torch.no_grad(), precision.autocast():
        for batch in loader.eval_batches():
            logits.append(method.predict(augment.eval(batch.images)).float())
    out = torch.cat(logits).cpu().numpy()
    return out.argmax(1), out


class Trainer:
    """Runs (or resumes) one training run into one run directory."""

    def __init__(self, cfg: RunConfig, run: RunDirectory, *, resuming: bool, state: dict | None = None):
        """``state``: the checkpoint to continue from (``resuming``; ``None`` starts at epoch 1)."""
        self.cfg = cfg
        self.run = run
        self.main = distributed.is_main()  # only rank 0 writes the run directory and prints
        self.device = distributed.local_device(resolve_device(cfg.device))
        self.exp: Experiment = build_experiment(cfg, device=self.device)
        self.method = self.exp.method
        self._check_data(resuming)
        if cfg.train.channels_last:  # conv weights in NHWC: the convolutions' outputs follow
            self.method.to(memory_format=torch.channels_last)
        if cfg.train.compile:  # in place, so state_dict keys (checkpoints, bundles) are unchanged
            self.method.backbone.compile()
        distributed.shard_backbones(self.method, sync_bn=cfg.train.sync_bn)
        if self.exp.read_report is not None and self.main:
            self.exp.read_report.write(self.run.path)  # RUN_DIR/skipped_items.jsonl
        self.labels = self._training_labels(resuming)
        self.heldout = self._heldout_indices()
        subset = None if self.heldout is None else np.setdiff1d(np.arange(len(self.exp.train)), self.heldout)
        self.train_loader = TensorLoader(self.exp.train, batch_size=cfg.train.batch_size, device=self.device,
                                         labels=self.labels.labels, columns=self.method.columns, subset=subset)
        self.test_loader = TensorLoader(self.exp.test, batch_size=cfg.train.eval_batch_size, device=self.device)
        self.steps_per_epoch = self.train_loader.num_batches(drop_last=cfg.train.drop_last)
        if self.steps_per_epoch == 0:
            raise UserError(f"train.batch_size={cfg.train.batch_size} is larger than the training set "
                            f"({self.train_loader.num_train_samples} samples"
                            f"{' outside the held-out fold' if self.heldout is not None else ''}) with drop_last")
        self.method.setup(TrainingSetup(labels=self.train_loader.labels, columns=self.exp.train.columns,
                                        class_names=self.exp.class_names, epochs=cfg.train.epochs,
                                        steps_per_epoch=self.steps_per_epoch, device=self.device,
                                        label_noise_rate=float(self.labels.realized_rate),
                                        fetch=self.train_loader.batch))
        self.optimizers = build_optimizers(self.method.param_groups(), cfg.train)
        self.schedule = Schedule(self.optimizers, cfg.train, self.steps_per_epoch)
        self.precision = Precision(cfg.train.amp, self.device)
        true = self._reference_labels()
        self.agreement = RunningAgreement(given=self.train_loader.labels,
                                          true=None if true is None else torch.as_tensor(true).to(self.train_loader.labels.device))
        if self.exp.held_out_test and not resuming and self.main:
            split = self.exp.held_out_test
            _note(f"the dataset has no test split: {split['test']} images ({split['held_out_fraction']:g} of each "
                  f"class, data.split_seed={split['split_seed']}) are held out as the test split, "
                  f"{split['train']} train")
        report = getattr(self.method.backbone, "pretrained_report", None)
        self.pretrained = report.summary if report is not None else None
        if self.pretrained and self.main:
            tqdm.write(f"pretrained weights: {self.pretrained}")
        self.history: list[dict] = []
        self.start_epoch = 1
        self.identity = config_identity(cfg)
        if resuming:
            self._restore(state)

    # -- set-up helpers --------------------------------------------------------------------
    def _training_labels(self, resuming: bool):
        from ..noise import load_noisy_labels, save_noisy_labels

        path = self.run.path / "train_labels.csv"
        train = self.exp.train
        if resuming and path.is_file():
            return load_noisy_labels(path, num_samples=len(train), num_classes=train.num_classes)
        labels = make_training_labels(self.cfg, train)
        if self.main:
            save_noisy_labels(labels, path)
        return labels

    def _heldout_indices(self) -> np.ndarray | None:
        """Training samples of the held-out fold (``data.folds``/``data.fold``), never drawn into a batch."""
        from ..data.folds import stratified_folds

        data = self.cfg.data
        if not data.folds:
            return None
        folds = stratified_folds(self.labels.labels, k=data.folds, seed=data.fold_seed)
        return np.flatnonzero(folds == data.fold)

    def _write_heldout(self, epoch: int) -> None:
        """Probabilities of the held-out fold under this epoch's weights (``heldout_probs.npz``)."""
        from ..data.folds import HELDOUT_FILE
        from .rundir import atomic_write_bytes

        idx = torch.from_numpy(self.heldout)
        probs = []
        self.method.eval()
        with torch.no_grad(), self.precision.autocast():
            for start in range(0, idx.numel(), self.cfg.train.eval_batch_size):
                batch = self.train_loader.batch(idx[start:start + self.cfg.train.eval_batch_size])
                probs.append(self.method.predict(self.exp.augment.eval(batch.images)).float().softmax(1))
        out = torch.cat(probs).cpu().numpy() if probs else np.zeros((0, self.exp.train.num_classes), np.float32)
        if not self.main:  # every rank takes part in the forward (its backbone share), rank 0 writes
            return
        buffer = io.BytesIO()
        np.savez(buffer, indices=self.heldout, probs=out, labels=np.asarray(self.labels.labels)[self.heldout],
                 epoch=epoch, fold=self.cfg.data.fold, folds=self.cfg.data.folds, fold_seed=self.cfg.data.fold_seed)
        atomic_write_bytes(self.run.path / HELDOUT_FILE, buffer.getvalue())

    def _reference_labels(self) -> np.ndarray | None:
        """Labels to measure memorization against: the simulator's truth, or the pre-noise labels."""
        if "true_label" in self.exp.train.columns:
            return np.asarray(self.exp.train.columns["true_label"], dtype=np.int64)
        if self.cfg.noise.kind != "none" or self.cfg.noise.file:
            return np.asarray(self.labels.original, dtype=np.int64)
        return None

    def _check_data(self, resuming: bool) -> None:
        """Record the data's fingerprint (``data.json``); when resuming, refuse data that changed."""
        if not self.main:
            return
        fingerprint = data_fingerprint({"train": self.exp.train, "test": self.exp.test})
        if resuming:
            changes = check_data_fingerprint(self.run.data_fingerprint, fingerprint)
            if changes:
                raise UserError(f"{self.run.path}: the data changed since the run was trained ({'; '.join(changes)}); "
                                "resuming would continue on other data: restore the dataset or start a new run")
            if self.run.data_fingerprint.is_file():
                return
        atomic_write_bytes(self.run.data_fingerprint, (dumps(fingerprint, indent=2) + "\n").encode())

    def _restore(self, state: dict | None) -> None:
        if state is None:
            if self.main:
                self.run.truncate_metrics(0)
            return
        epoch = state["epoch"]
        self.method.load_state_dict(state["method"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        self.precision.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if distributed.world_size() > 1 and self.device.type == "cuda" and "cuda" in state["rng"]:
            # rank 0 saved the stream of its GPU (cuda:0); every rank's GPU continues that one stream
            torch.cuda.set_rng_state(state["rng"]["cuda"][0], self.device)
        self.history = self.run.truncate_metrics(epoch) if self.main else []
        self.start_epoch = epoch + 1
        if self.main:
            tqdm.write(f"resuming {self.run.path} after epoch {epoch}")

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> RunResult:
        from torch.utils.tensorboard import SummaryWriter

        cfg, method = self.cfg, self.method
        total_steps = cfg.train.epochs * self.steps_per_epoch
        writer = step_writer = None
        if self.main:
            writer = SummaryWriter(str(self.run.tensorboard), purge_step=self.start_epoch)
            # per-step points in their own folder: its x axis is the global step, so a resume purges by step
            step_writer = SummaryWriter(str(self.run.tensorboard / "steps"),
                                        purge_step=(self.start_epoch - 1) * self.steps_per_epoch + 1)
        bar = tqdm(total=total_steps, initial=(self.start_epoch - 1) * self.steps_per_epoch, unit="step",
                   desc=self.run.path.name[-40:], dynamic_ncols=True, disable=None if self.main else True)
        started = time.time()
        try:
            for epoch in range(self.start_epoch, cfg.train.epochs + 1):
                t0 = time.time()
                train_logs = self._train_epoch(epoch, bar, step_writer)
                record = {"epoch": epoch, **train_logs, **method.on_epoch_end(epoch)}
                distributed.broadcast_backbone_buffers(method)  # one set of BN statistics to evaluate with
                preds, _ = evaluate(method, self.test_loader, self.precision, self.exp.augment)
                report = classification_report(self.exp.test.labels, preds, self.exp.train.num_classes)
                record.update(report.as_dict("test_"))
                record["time_epoch_s"] = round(time.time() - t0, 3)
                self._end_epoch(epoch, record, writer)
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{report.accuracy:.3f}")
                if not self.main:
                    continue
                done = epoch - self.start_epoch + 1
                eta = (time.time() - started) / done * (cfg.train.epochs - epoch)
                tqdm.write(f"epoch {epoch}/{cfg.train.epochs}  loss {record['train_loss']:.4f}  "
                           f"test acc {report.accuracy:.4f}  balanced {report.balanced_accuracy:.4f}  "
                           f"({record['time_epoch_s']:.1f}s, eta {eta / 60:.1f} min)")
            summary = self._summary(status="finished", elapsed=time.time() - started)
            if writer is not None:
                write_hparams(writer, self.cfg, summary)
        finally:
            bar.close()
            for w in (writer, step_writer):
                if w is not None:
                    w.close()
        return RunResult(run_dir=self.run.path, summary=summary)

    def _train_epoch(self, epoch: int, bar, step_writer=None) -> dict:
        cfg, method = self.cfg, self.method
        method.train()
        method.on_epoch_start(epoch)
        self.agreement.reset()
        sums: dict[str, torch.Tensor] = {}
        check_every = 1 if self.device.type == "cpu" else max(cfg.train.log_every, 1)
        window_loss = torch.zeros((), device=self.device)
        log_every = max(cfg.train.log_every, 1)
        logged_loss, logged_steps = torch.zeros((), device=self.device), 0
        params = [p for p in method.parameters() if p.requires_grad]
        lr = cfg.train.lr
        skipped = 0
        batches = self.train_loader.train_batches(seed=cfg.seed, epoch=epoch, sampler=cfg.train.sampler,
                                                  drop_last=cfg.train.drop_last)
        for step, batch in enumerate(batches):
            lr = self.schedule.set_step(epoch, step)
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            with self.precision.autocast():
                out = method.training_step(batch, epoch=epoch)
            if out.loss is None:
                skipped += 1
                bar.update(1)
                continue
            loss = out.loss
            self.precision.scaler.scale(loss).backward()
            distributed.average_gradients(params)
            if cfg.train.grad_clip:
                for opt in self.optimizers:
                    self.precision.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            for opt in self.optimizers:
                self.precision.scaler.step(opt)
            self.precision.scaler.update()
            loss = loss.detach().float()
            window_loss = window_loss + loss
            logged_loss, logged_steps = logged_loss + loss, logged_steps + 1
            for key, value in {"loss": loss, **out.logs}.items():
                value = torch.as_tensor(value, dtype=torch.float32).detach().to(self.device)
                sums[key] = sums[key] + value if key in sums else value
            if out.logits is not None:
                self.agreement.update(out.logits.detach(), batch.indices)
            if (step + 1) % check_every == 0 or step + 1 == self.steps_per_epoch:
                value = float(window_loss)
                if not math.isfinite(value):
                    first = step + 2 - check_every if check_every > 1 else step + 1
                    last_good = (f"the last good state is {self.run.checkpoint_path(epoch - 1)} (resume= "
                                 "continues from it)" if epoch > 1 else "no epoch finished, so there is no "
                                 "checkpoint: start the run again")
                    raise TrainingDiverged(
                        f"loss is {value} at epoch {epoch}, step {max(first, 1)}..{step + 1} of "
                        f"{self.steps_per_epoch}; lower train.lr or check the data; {last_good}")
                window_loss = torch.zeros((), device=self.device)
            if step_writer is not None and ((step + 1) % log_every == 0 or step + 1 == self.steps_per_epoch):
                # on CUDA these steps are the divergence check's (check_every = log_every): no extra wait
                global_step = (epoch - 1) * self.steps_per_epoch + step + 1
                step_writer.add_scalar("step/train_loss", float(logged_loss) / logged_steps, global_step)
                step_writer.add_scalar("step/lr", lr, global_step)
                logged_loss, logged_steps = torch.zeros((), device=self.device), 0
            bar.update(1)
        done = max(self.steps_per_epoch - skipped, 1)
        logs = {f"train_{k}": float(v) / done for k, v in sums.items()}
        logs["lr"] = lr
        if skipped:
            logs["train_skipped_steps"] = skipped
        logs.update(self.agreement.compute())
        return logs

    def _end_epoch(self, epoch: int, record: dict, writer) -> None:
        self.history.append(record)
        if self.heldout is not None:
            self._write_heldout(epoch)  # a forward on every rank
        if not self.main:
            return
        self.run.append_metrics(record)
        for key, value in record.items():
            if isinstance(value, (int, float)) and key != "epoch":
                writer.add_scalar(key.replace("train_", "train/").replace("test_", "test/"), value, epoch)
        write_confusion_image(writer, record["test_confusion"], self.exp.class_names, epoch)
        writer.flush()
        self.run.save_samples(epoch, self.method.epoch_record())
        earlier = [r["test_accuracy"] for r in self.history[:-1]]
        if not earlier or record["test_accuracy"] > max(earlier):  # first epoch of the best, as the summary
            self.run.save_best({"epoch": epoch, "method": self.method.state_dict()})
        state = {
            "epoch": epoch,
            "method": self.method.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "scaler": self.precision.scaler.state_dict(),
            "rng": rng_state(),
            "noisyfer_version": __version__,
            "world_size": distributed.world_size(),
            "config": self.identity,
            "config_hash": config_hash(self.identity),
        }
        self.run.save_checkpoint(epoch, state, keep=self.cfg.train.keep_checkpoints)
        self._summary(status="running" if epoch < self.cfg.train.epochs else "finished")

    def _summary(self, *, status: str, elapsed: float | None = None) -> dict:
        summary = summarize(self.history, class_names=self.exp.class_names)
        summary.update({
            "status": status,
            "method": self.cfg.method,
            "data": self.cfg.data.name,
            "backbone": self.cfg.model.backbone,
            "image_size": self.exp.image_size,
            "noise": {"kind": self.labels.kind, "rate": self.labels.rate,
                      "realized_rate": self.labels.realized_rate},
            "pretrained": self.pretrained,
            "data_skipped": len(self.exp.read_report.skipped) if self.exp.read_report is not None else 0,
            "test_split": self.exp.held_out_test or "the dataset's own",
            "reference_labels": ("true" if "true_label" in self.exp.train.columns
                                 else "original (before the injected noise)"),
            **({"folds": {"folds": self.cfg.data.folds, "heldout_fold": self.cfg.data.fold,
                          "fold_seed": self.cfg.data.fold_seed, "heldout_samples": int(self.heldout.size),
                          "trained_samples": self.train_loader.num_train_samples}}
               if self.heldout is not None else {}),
            **({"method_resolved": dict(self.method.resolved)} if self.method.resolved else {}),
            "seed": self.cfg.seed,
            "epochs": self.cfg.train.epochs,
            "device": str(self.device),
            "world_size": distributed.world_size(),
            "run_dir": str(self.run.path),
        })
        if elapsed is not None:
            summary["elapsed_s"] = round(elapsed, 1)
        if self.main:
            self.run.write_summary(summary)
        return summary


def write_confusion_image(writer, confusion, class_names, epoch: int) -> None:
    """The epoch's test confusion matrix as an image (TensorBoard's Images tab)."""
    from ..report.figures import confusion_figure

    writer.add_figure("test/confusion", confusion_figure(confusion, class_names, title=f"test, epoch {epoch}"),
                      epoch, close=True)


def write_hparams(writer, cfg: RunConfig, summary: dict) -> None:
    """The run's hyper-parameters (every config key) with its headline metrics (TensorBoard's HParams tab)."""
    from .provenance import _flatten

    hparams = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
               for k, v in _flatten(cfg.to_dict()).items() if k not in ("out", "name", "resume")}
    metrics = {f"hparam/{k}": float(summary[k]) for k in ("accuracy_best", "accuracy_last", "balanced_accuracy_last")
               if isinstance(summary.get(k), (int, float))}
    writer.add_hparams(hparams, metrics, run_name=".")


def _note(text: str) -> None:
    tqdm.write(f"noisyfer: {text}", file=sys.stderr)
