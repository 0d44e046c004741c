"""Co-teaching: two networks, each training the other on the samples it finds easiest.

Han, Yao, Yu, Niu, Xu, Hu, Tsang and Sugiyama, "Co-teaching: Robust training of deep neural
networks with extremely noisy labels", NeurIPS 2018, Algorithm 1. Networks f and g see the same
mini-batch; each keeps the ``R(T)`` fraction of it with the smallest cross-entropy under its own
predictions (step 4-5: ``D_f = argmin_{|D'| >= R(T)|D|} l(f, D')``) and the *other* network is
updated on that selection (step 6-7: f on ``D_g``, g on ``D_f``). Small-loss samples are more
likely correctly labelled, and two networks with different starts filter different errors, so
the mistakes of one are not fed back into itself (Sec. 2). After epoch T (step 8)::

    R(T) = 1 - min(T / T_k, 1) * tau

so epoch T trains with ``R(T - 1)``: every sample in epoch 1, ``tau`` fewer after ``T_k`` epochs.
``tau`` is the noise rate (the paper assumes it known, or estimated on validation data, Sec. 3);
by default it is the fraction of training labels the run's noise protocol changed, on a dataset
without injected noise set ``forget_rate`` to an estimate. ``T_k = 10`` as in the paper. The kept
count is ``ceil(R(T) * N)`` (the smallest set with ``|D'| >= R(T)|D|``), ties broken by batch order.

The second network comes from :meth:`Method.new_backbone`: the run's backbone kind with the run's
pretrained weights (``second_pretrained``, default) or fresh ones; its linear classifier always
starts from its own random draw, so the two networks differ from the first step. Prediction uses
network f (``predict_with="first"``, the cost of one network) or the mean of both networks'
probabilities (``"mean"``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, StepOutput, TrainingSetup

__all__ = ["CoTeaching", "CoTeachingLosses", "CoTeachingOptions", "coteaching_losses", "keep_ratio"]

PREDICT_WITH = ("first", "mean")


def keep_ratio(epoch: int, *, tau: float, num_gradual: int) -> float:
    """``R(epoch - 1) = 1 - min((epoch - 1) / T_k, 1) * tau``: the fraction kept in ``epoch`` (from 1)."""
    return 1.0 - min((epoch - 1) / num_gradual, 1.0) * tau


class CoTeachingLosses(NamedTuple):
    """One batch's cross-update (see :func:`coteaching_losses`)."""

    loss_f: Tensor
    loss_g: Tensor
    ce_f: Tensor
    picked_by_f: Tensor
    picked_by_g: Tensor


def coteaching_losses(logits_f: Tensor, logits_g: Tensor, labels: Tensor, *, keep: float) -> CoTeachingLosses:
    """f's mean cross-entropy on g's small-loss picks and g's on f's (Algorithm 1, steps 4-7).

    Each network picks the ``ceil(keep * N)`` samples (at least one) of smallest cross-entropy under
    its own logits (ties: batch order); ``picked_by_*`` are those boolean masks and ``ce_f`` f's
    per-sample cross-entropy (detached).
    """
    ce_f = F.cross_entropy(logits_f.float(), labels, reduction="none")
    ce_g = F.cross_entropy(logits_g.float(), labels, reduction="none")
    count = max(1, math.ceil(keep * labels.shape[0] - 1e-9))
    picked_by_f = torch.zeros_like(labels, dtype=torch.bool)
    picked_by_g = torch.zeros_like(labels, dtype=torch.bool)
    picked_by_f[torch.argsort(ce_f.detach(), stable=True)[:count]] = True
    picked_by_g[torch.argsort(ce_g.detach(), stable=True)[:count]] = True
    # Sums over the picks divided by their known count: a boolean-mask selection would have a
    # data-dependent size, which makes an accelerator wait for the host.
    return CoTeachingLosses(loss_f=(ce_f * picked_by_g).sum() / count, loss_g=(ce_g * picked_by_f).sum() / count,
                            ce_f=ce_f.detach(),
                            picked_by_f=picked_by_f, picked_by_g=picked_by_g)


@dataclass
class CoTeachingOptions:
    """Options of the ``coteaching`` method.

    Attributes
    ----------
    forget_rate
        ``tau``, the fraction of each batch finally left out, in [0, 1); ``None`` takes the run's
        label-noise rate (fraction of labels its noise protocol changed; 0 without injected noise).
    num_gradual
        ``T_k``: epochs over which the left-out fraction grows linearly to ``tau`` (paper: 10).
    second_pretrained
        Network g starts from the run's pretrained weights (as f) rather than fresh ones.
    predict_with
        ``"first"`` (network f) or ``"mean"`` (mean of both networks' probabilities).
    """

    forget_rate: float | None = None
    num_gradual: int = 10
    second_pretrained: bool = True
    predict_with: str = "first"

    def __post_init__(self) -> None:
        if self.forget_rate is not None and not 0.0 <= self.forget_rate < 1.0:
            raise ValueError(f"forget_rate must be in [0, 1) or null, got {self.forget_rate}")
        if self.num_gradual < 1:
            raise ValueError(f"num_gradual must be >= 1, got {self.num_gradual}")
        if self.predict_with not in PREDICT_WITH:
            raise ValueError(f"predict_with must be one of {', '.join(PREDICT_WITH)}, got '{self.predict_with}'")


@register_method("coteaching", options=CoTeachingOptions)
class CoTeaching(Method):
    """Two networks exchanging their small-loss samples (Han et al., NeurIPS 2018, Algorithm 1).

    Network f is ``backbone`` + ``fc``, network g ``backbone2`` + ``fc2`` (from ``new_backbone``).
    ``epoch_record`` saves ``clean_score``: minus f's cross-entropy when the sample was last seen
    (NaN if never).
    """

    signal = ("small-loss criterion: minus network f's cross-entropy on the given label when last drawn "
              "(Algorithm 1 keeps the small-loss samples as the likely clean ones)")

    def __init__(self, *, options: CoTeachingOptions, **common):
        super().__init__(options=options, **common)
        self.fc = nn.Linear(self.backbone.num_features, self.num_classes)
        self.backbone2 = self.new_backbone(pretrained=options.second_pretrained)
        self.fc2 = nn.Linear(self.backbone2.num_features, self.num_classes)
        self.state.register("loss", torch.full((self.num_train,), float("nan")))
        self.tau = 0.0 if options.forget_rate is None else float(options.forget_rate)

    def setup(self, info: TrainingSetup) -> None:
        if self.options.forget_rate is None:
            self.tau = float(info.label_noise_rate)
            if self.tau == 0.0:
                warnings.warn("coteaching: the run changed no labels, so the forget rate is 0 (two networks "
                              "trained on every sample); set method.forget_rate to the estimated noise rate",
                              stacklevel=2)

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).features)

    def forward_second(self, images: Tensor) -> Tensor:
        return self.fc2(self.backbone2(images).features)

    def predict(self, images: Tensor) -> Tensor:
        if self.options.predict_with == "first":
            return self(images)
        probs = (self(images).float().softmax(1) + self.forward_second(images).float().softmax(1)) / 2
        return probs.log()

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        images = self.augment.train(batch.images)
        logits_f, logits_g = self(images), self.forward_second(images)
        keep = keep_ratio(epoch, tau=self.tau, num_gradual=self.options.num_gradual)
        out = coteaching_losses(logits_f, logits_g, batch.labels, keep=keep)
        self.state.update("loss", batch.indices, out.ce_f)
        logs = {"loss_f": out.loss_f.detach(), "loss_g": out.loss_g.detach(), "keep": keep,
                "pick_overlap": (out.picked_by_f & out.picked_by_g).sum() / out.picked_by_f.sum()}
        return StepOutput(loss=out.loss_f + out.loss_g, logits=logits_f, logs=logs)

    def epoch_record(self) -> dict[str, Tensor]:
        return {"clean_score": -self.state["loss"]}
