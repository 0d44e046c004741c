"""RUL (Relative Uncertainty Learning, Zhang, Wang, Deng, NeurIPS 2021): uncertainty-weighted feature mixing.

From the last-stage feature map two heads give a mean embedding ``mu_i`` and a log-variance
``logvar_i``; the sample's uncertainty is ``s_i = mean_d exp(logvar_i,d)``. Each sample is paired
with a partner ``j = perm(i)`` (a random permutation of the batch) and the features are mixed by
*relative* uncertainty::

    w_i = s_i / (s_i + s_j),   w_j = s_j / (s_i + s_j),   z_i = w_i mu_i + w_j mu_j

The classifier sees ``z_i``; the add-up loss asks it to recognise both labels::

    L_add = 0.5 CE(fc(z_i), y_i) + 0.5 CE(fc(z_i), y_j)

To satisfy both labels the mix must lean towards the sample that is harder to recognise, so ``s``
grows with difficulty (the learned uncertainty). Inference uses ``fc(mu)`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, ParamGroup, StepOutput, TrainingSetup
from .relabeling import RelabelTracker, relabel_decision

__all__ = ["RUL", "RULOptions", "add_up_loss", "relative_uncertainty_mix"]


def relative_uncertainty_mix(mu: Tensor, uncertainty: Tensor, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mix each ``mu_i`` with its partner ``mu_perm(i)`` by relative uncertainty.

    Parameters
    ----------
    mu
        (N, D) mean embeddings.
    uncertainty
        (N,) positive uncertainties ``s_i``.
    perm
        (N,) partner index of each sample.

    Returns
    -------
    mixed, w_self, w_partner
        (N, D) float32 ``z``, and (N,) weights ``s_i / (s_i + s_j)`` and ``s_j / (s_i + s_j)``.
    """
    s = uncertainty.float()
    total = s + s[perm]
    w_self, w_partner = s / total, s[perm] / total
    mu = mu.float()
    return w_self[:, None] * mu + w_partner[:, None] * mu[perm], w_self, w_partner


def add_up_loss(logits: Tensor, labels: Tensor, partner_labels: Tensor) -> Tensor:
    """RUL's add-up loss: ``0.5 CE(logits, y_i) + 0.5 CE(logits, y_j)`` (batch means)."""
    return 0.5 * F.cross_entropy(logits, labels) + 0.5 * F.cross_entropy(logits, partner_labels)


def embedding_head(channels: int, flat_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """BN2d (no affine) -> dropout -> flatten -> linear -> BN1d: RUL's mean / log-variance head."""
    return nn.Sequential(nn.BatchNorm2d(channels, eps=2e-5, affine=False), nn.Dropout(dropout), nn.Flatten(),
                         nn.Linear(flat_dim, out_dim), nn.BatchNorm1d(out_dim, eps=2e-5))


@torch.no_grad()
def feature_map_shape(backbone: nn.Module, image_size: int) -> tuple[int, int, int]:
    """(D, h, w) of ``backbone``'s feature map for ``image_size`` inputs (probed in eval mode)."""
    was_training = backbone.training
    backbone.eval()
    try:
        device = next(backbone.parameters()).device
        fmap = backbone(torch.zeros(1, 3, image_size, image_size, device=device)).feature_map
    finally:
        backbone.train(was_training)
    return tuple(fmap.shape[1:])  # type: ignore[return-value]


@dataclass
class RULOptions:
    """Options of ``rul``.

    Attributes
    ----------
    feature_dim
        Size of the mean / log-variance embeddings (``out_dimension`` = 64).
    dropout
        Dropout inside both heads (0.4).
    fc_lr_scale
        Classifier learning rate / ``train.lr`` (public code: 2e-3 vs 2e-4, i.e. 10).
    relabel
        Add SCN's relabeling (Eq. 1 of paper 000) on the mean branch's softmax; off in the public
        code, reported by the authors to matter for their synthetic-noise results.
    relabel_epoch, margin2
        As in ``scn`` (first relabeling epoch, relabeling margin).
    classifier_bias
        Give the classifier ``fc`` a bias (RUL's public code: yes). ``rul_c`` defaults to false.
    """

    feature_dim: int = 64
    dropout: float = 0.4
    fc_lr_scale: float = 10.0
    relabel: bool = False
    relabel_epoch: int = 10
    margin2: float = 0.2
    classifier_bias: bool = True

    def __post_init__(self) -> None:
        if self.feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {self.feature_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.fc_lr_scale <= 0:
            raise ValueError(f"fc_lr_scale must be > 0, got {self.fc_lr_scale}")
        if self.relabel_epoch < 1:
            raise ValueError(f"relabel_epoch must be >= 1 (epochs count from 1), got {self.relabel_epoch}")
        if not 0.0 <= self.margin2 < 1.0:
            raise ValueError(f"margin2 must be in [0, 1), got {self.margin2}")


@register_method("rul", options=RULOptions)
class RUL(Method):
    """Relative Uncertainty Learning: features mixed by relative uncertainty, add-up loss.

    Zhang, Wang, Deng, "Relative Uncertainty Learning for Facial Expression Recognition", NeurIPS 2021
    (the RUL baseline of paper 000). The RUL paper is not in noisyfer's spec set: defaults follow its
    public code as recorded in ``official-implementations.md`` (heads on the layer-4 map, 64-d
    embeddings, dropout 0.4, ``s = mean(exp(logvar))``, random-permutation partners, add-up loss with
    weights 0.5 / 0.5, classifier at 10x the learning rate, ``fc(mu)`` at test). The heads flatten the
    whole feature map, so their size follows ``image_size`` (probed once at construction).

    Optional (``relabel=true``): SCN's relabeling rule on ``softmax(fc(mu))``, with the same per-sample
    label state and relabel-inconsistency counters as ``scn``.

    ``epoch_record``: ``labels``; ``uncertainty`` (last ``s_i`` of each sample, NaN until first drawn);
    ``clean_score`` = ``m / (s_i + m)`` with ``m`` the mean recorded uncertainty, i.e. one minus the
    relative uncertainty against an average partner (0.5 = average, higher = more certain).
    """

    signal = "RUL's relative certainty m / (s_i + m), s_i its learned uncertainty: low for uncertain faces"

    def __init__(self, *, options: RULOptions, **common):
        super().__init__(options=options, **common)
        channels, h, w = feature_map_shape(self.backbone, self.image_size)
        flat = channels * h * w
        self.mean_head = embedding_head(channels, flat, options.feature_dim, options.dropout)
        self.logvar_head = embedding_head(channels, flat, options.feature_dim, options.dropout)
        self.fc = nn.Linear(options.feature_dim, self.num_classes, bias=options.classifier_bias)
        self.relabeling = RelabelTracker(self.state, num_classes=self.num_classes)
        self.state.register("uncertainty", torch.full((self.num_train,), float("nan")))
        self._totals_at_epoch_start: Tensor | None = None

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.mean_head(self.backbone(images).feature_map))

    def param_groups(self) -> list[ParamGroup]:
        classifier = list(self.fc.parameters())
        ids = {id(p) for p in classifier}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [ParamGroup(rest), ParamGroup(classifier, lr_scale=self.options.fc_lr_scale)]

    # -- hooks ------------------------------------------------------------------------------
    def setup(self, info: TrainingSetup) -> None:
        self.relabeling.reset(info.labels)

    def on_epoch_start(self, epoch: int) -> None:
        self._totals_at_epoch_start = self.relabeling.totals()

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        logs = {"uncertainty_mean": float(torch.nanmean(self.state["uncertainty"]).item())}
        if self.options.relabel:
            start = self._totals_at_epoch_start
            logs.update(self.relabeling.epoch_logs(start if start is not None else torch.zeros(2, dtype=torch.long)))
        return logs

    def epoch_record(self) -> dict[str, Tensor]:
        s = self.state["uncertainty"]
        m = torch.nanmean(s)
        record = {"uncertainty": s, "clean_score": m / (s + m)}
        if self.options.relabel:  # without relabeling the labels never move: no relabel history to show
            record["labels"] = self.state["labels"]
        return record

    def auxiliary_loss(self, mu: Tensor, logvar: Tensor, labels: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Extra loss on the unmixed embeddings with the current labels (none here; RUL-C adds L_C)."""
        return None, {}

    # -- training ---------------------------------------------------------------------------
    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        labels = self.relabeling.labels(batch.indices)
        fmap = self.backbone(self.augment.train(batch.images)).feature_map
        mu, logvar = self.mean_head(fmap), self.logvar_head(fmap)
        uncertainty = logvar.float().exp().mean(1)
        perm = torch.randperm(labels.shape[0], device=labels.device)
        mixed, w_self, _ = relative_uncertainty_mix(mu, uncertainty, perm)
        loss = add_up_loss(self.fc(mixed), labels, labels[perm])
        logits = self.fc(mu)
        logs: dict[str, Tensor] = {"add_up_loss": loss.detach(), "uncertainty": uncertainty.detach().mean(),
                                   "mix_weight_min": torch.minimum(w_self, 1 - w_self).detach().mean()}
        extra, extra_logs = self.auxiliary_loss(mu, logvar, labels)
        if extra is not None:
            loss = loss + extra
            logs.update(extra_logs)
        self.state.update("uncertainty", batch.indices, uncertainty.detach())
        if self.options.relabel and epoch >= self.options.relabel_epoch:
            probs = logits.detach().float().softmax(1)
            new_labels, changed = relabel_decision(probs, labels, margin=self.options.margin2)
            self.relabeling.apply(batch.indices, new_labels, changed)
        return StepOutput(loss=loss, logits=logits.detach(), logs=logs)
