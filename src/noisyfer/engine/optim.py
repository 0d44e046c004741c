"""Optimizers and learning-rate schedules built from ``train.*`` settings.

Schedules are one multiplicative factor of the base learning rate, a function of the fractional
epoch, applied at every step: ``exponential`` (``gamma ** epoch``, stepped per whole epoch, as the
papers' ExponentialLR), ``multistep`` (``gamma`` at each milestone), ``cosine`` (to ``min_lr``), or
``constant``; ``warmup_epochs`` ramps linearly from 0 first.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from ..config import TrainConfig
from ..errors import UserError
from ..methods.base import OptimizerSpec, ParamGroup

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, groups: list[dict], cfg: TrainConfig,
                   settings: Mapping[str, Any] | None = None) -> torch.optim.Optimizer:
    """The optimizer ``name`` over torch parameter groups, defaults from ``cfg`` replaced by ``settings``."""
    if name == "sgd":
        cls, defaults = torch.optim.SGD, {"momentum": cfg.momentum, "nesterov": cfg.nesterov}
    elif name == "adam":
        cls, defaults = torch.optim.Adam, {}
    elif name == "adamw":
        cls, defaults = torch.optim.AdamW, {}
    else:
        raise UserError(f"unknown optimizer '{name}'; expected one of {', '.join(OPTIMIZERS)}")
    kwargs = {"lr": cfg.lr, **defaults, "weight_decay": cfg.weight_decay, **(settings or {})}
    # SGD stays on torch's default path: its fused kernel fails on a first momentum step whose buffers
    # are not all created yet (torch 2.13, seen in the data-parallel runs).
    if cfg.fused_optimizer and name in ("adam", "adamw") and "foreach" not in kwargs:
        kwargs.setdefault("fused", True)
    try:
        return cls(groups, **kwargs)
    except TypeError as exc:
        raise TypeError(f"optimizer '{name}': invalid settings {dict(settings or {})}: {exc}") from None


def build_optimizers(groups: list[ParamGroup], cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """One optimizer for the groups on the run's ``train.optimizer``, plus one per distinct
    :class:`~noisyfer.methods.OptimizerSpec` the groups name, in order of first appearance."""
    buckets: list[tuple[OptimizerSpec | None, list[dict]]] = []
    for group in groups:
        if not isinstance(group, ParamGroup):
            raise TypeError(f"param_groups() must return noisyfer.methods.ParamGroup objects, got {type(group).__name__}")
        params = [p for p in group.params if p.requires_grad]
        if not params:
            continue
        torch_group = {"params": params, "lr": cfg.lr * group.lr_scale if group.lr is None else group.lr,
                       "weight_decay": cfg.weight_decay if group.weight_decay is None else group.weight_decay}
        for spec, members in buckets:
            if spec == group.optimizer:
                members.append(torch_group)
                break
        else:
            buckets.append((group.optimizer, [torch_group]))
    if not buckets:
        raise UserError("the method has no trainable parameters")
    return [make_optimizer(cfg.optimizer, members, cfg) if spec is None
            else make_optimizer(spec.name, members, cfg, spec.settings) for spec, members in buckets]


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
