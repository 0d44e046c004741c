"""Generalized cross-entropy (GCE): the L_q loss between cross-entropy and mean absolute error.

Zhang and Sabuncu, "Generalized cross entropy loss for training deep neural networks with noisy
labels", NeurIPS 2018. With ``p_y`` the softmax probability of the given label (Eq. 6)::

    L_q = (1 - p_y ** q) / q,        0 < q <= 1

``q -> 0`` is cross-entropy, ``q = 1`` is MAE up to a factor 2 (``1 - p_y``). Its gradient is
cross-entropy's weighted by ``p_y ** q``: samples the network disagrees with (often the mislabeled
ones) pull less than under cross-entropy, while training stays faster than with MAE. ``q = 0.7`` is
the paper's value.

Truncated L_q (Eq. 9 and Algorithm 1, ``truncate=True``): a sample whose ``p_y`` is at most ``k``
counts the constant ``L_q(k) = (1 - k ** q) / q`` (no gradient). The paper optimises per-sample
weights ``w_i`` in {0, 1} alternately with the network: at pruning epochs every training sample is
forwarded and ``w_i = 1`` exactly when ``p_y > k``; between them the loss is
``w_i L_q(p_i) + (1 - w_i) L_q(k)``. Here pruning happens at the start of epochs ``prune_start``,
``prune_start + prune_every``, ... with the network as it is after the previous epoch (eval mode,
un-augmented faces). ``k = 0.5``; the paper prunes every 10 epochs from epoch 40 of 120 (CIFAR),
which a shorter run must scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, StepOutput, TrainingSetup

__all__ = ["GCE", "GCEOptions", "lq_loss"]


def lq_loss(logits: Tensor, labels: Tensor, *, q: float) -> Tensor:
    """Per-sample ``(1 - p_y ** q) / q`` (Eq. 6), in float32 as ``-expm1(q log p_y) / q`` (exact
    also for small ``q``, where ``1 - p_y ** q`` would cancel).

    Examples
    --------
    >>> round(float(lq_loss(torch.zeros(1, 2), torch.tensor([0]), q=1.0)), 4)   # 1 - 0.5
    0.5
    """
    log_py = F.log_softmax(logits.float(), dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
    return -torch.expm1(q * log_py) / q


@dataclass
class GCEOptions:
    """Options of the ``gce`` method.

    Attributes
    ----------
    q
        Exponent of the L_q loss, in (0, 1] (paper: 0.7).
    truncate
        Use the truncated L_q loss with pruning (paper's Eq. 9 and Algorithm 1).
    k
        Truncation threshold on ``p_y``, in (0, 1) (paper: 0.5).
    prune_start, prune_every
        First pruning epoch and the epochs between prunings (paper: 40 and 10 of 120).
    """

    q: float = 0.7
    truncate: bool = False
    k: float = 0.5
    prune_start: int = 40
    prune_every: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {self.q}")
        if not 0.0 < self.k < 1.0:
            raise ValueError(f"k must be in (0, 1), got {self.k}")
        if self.prune_start < 1 or self.prune_every < 1:
            raise ValueError(f"prune_start and prune_every must be >= 1, got {self.prune_start}, {self.prune_every}")


@register_method("gce", options=GCEOptions)
class GCE(Method):
    """Generalized cross-entropy L_q, optionally truncated with pruning (Zhang and Sabuncu, NeurIPS 2018).

    One view per step (``augment.train``), one linear classifier. With ``truncate``, ``epoch_record``
    saves the weights as ``clean_score`` (1 kept, 0 pruned).
    """

    def __init__(self, *, options: GCEOptions, **common):
        super().__init__(options=options, **common)
        self.fc = nn.Linear(self.backbone.num_features, self.num_classes)
        self.state.register("weight", torch.ones(self.num_train))
        self._fetch = None

    def setup(self, info: TrainingSetup) -> None:
        self._fetch = info.fetch

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).features)

    def on_epoch_start(self, epoch: int) -> None:
        opts = self.options
        if opts.truncate and epoch >= opts.prune_start and (epoch - opts.prune_start) % opts.prune_every == 0:
            self._prune()

    @torch.no_grad()
    def _prune(self, chunk: int = 256) -> None:
        """``w_i = 1[p_y(x_i) > k]`` for every training sample, with the current network."""
        if self._fetch is None:
            raise RuntimeError("gce: truncate=True needs the engine's fetch() of training samples (setup)")
        was_training = self.training
        self.eval()
        for start in range(0, self.num_train, chunk):
            batch = self._fetch(torch.arange(start, min(start + chunk, self.num_train)))
            log_py = F.log_softmax(self(self.augment.eval(batch.images)).float(), dim=1)
            p_y = log_py.gather(1, batch.labels.view(-1, 1)).squeeze(1).exp()
            self.state.update("weight", batch.indices, (p_y > self.options.k).float())
        self.train(was_training)

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        logits = self(self.augment.train(batch.images))
        q = self.options.q
        losses = lq_loss(logits, batch.labels, q=q)
        logs = {}
        if self.options.truncate:
            weight = self.state["weight"][batch.indices]
            losses = weight * losses + (1.0 - weight) * (1.0 - self.options.k ** q) / q
            logs["kept"] = weight.mean()
        return StepOutput(loss=losses.mean(), logits=logits, logs=logs)

    def epoch_record(self) -> dict[str, Tensor]:
        return {"clean_score": self.state["weight"]} if self.options.truncate else {}
