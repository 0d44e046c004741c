"""Optimizers and learning-rate schedules built from ``train.*`` settings.

Schedules are one multiplicative factor of the base learning rate, a function of the fractional
epoch, applied at every step: ``exponential`` (``gamma ** epoch``, stepped per whole epoch, as the
papers' ExponentialLR), ``multistep`` (``gamma`` at each milestone), ``cosine`` (to ``min_lr``), or
``constant``; ``warmup_epochs`` ramps linearly from 0 first.
"""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig
from ..errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise UserError(f"unknown optimizer '{name}'; expected one of {', '.join(OPTIMIZERS)}")


def build_optimizers(groups: list[dict], cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """One optimizer for the run's ``train.optimizer`` plus one per other optimizer that groups name."""
    by_name: dict[str, list[dict]] = {}
    for group in groups:
        group = dict(group)
        name = group.pop("optimizer", cfg.optimizer)
        group["params"] = [p for p in group["params"] if p.requires_grad]
        if group["params"]:
            by_name.setdefault(name, []).append(group)
    if not by_name:
        raise UserError("the method has no trainable parameters")
    return [make_optimizer(name, g, cfg) for name, g in by_name.items()]


def lr_factor(epoch: float, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at fractional epoch ``epoch`` (0 = start of training)."""
    if cfg.warmup_epochs > 0 and epoch < cfg.warmup_epochs:
        return (epoch + 1e-8) / cfg.warmup_epochs
    whole = math.floor(epoch + 1e-9)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "exponential":
        return cfg.gamma ** whole
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(whole >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
        progress = min(max((epoch - cfg.warmup_epochs) / span, 0.0), 1.0)
        floor = cfg.min_lr / cfg.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    raise UserError(f"unknown schedule '{cfg.schedule}'")


class Schedule:
    """Sets every group's lr to ``initial_lr * lr_factor(epoch)``; stateless, so resuming is exact."""

    def __init__(self, optimizers: list[torch.optim.Optimizer], cfg: TrainConfig, steps_per_epoch: int):
        self.optimizers = optimizers
        self.cfg = cfg
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        for opt in optimizers:
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])

    def set_step(self, epoch: int, step: int) -> float:
        """Set the lr for ``step`` (0-based) of ``epoch`` (1-based); return the run's base lr now."""
        factor = lr_factor(epoch - 1 + step / self.steps_per_epoch, self.cfg)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * factor
        return self.cfg.lr * factor
