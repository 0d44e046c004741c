"""SCN (Self-Cure Network, Wang et al., CVPR 2020): attention weighting, rank regularization, relabeling.

Modules (as summarised in paper 000, Sec. III-A, and read from SCN's public code):

* self-attention importance weighting: ``a_i = sigmoid(w^T x_i + b)`` on the pooled feature, the
  logits are ``a_i * fc(x_i)`` (so a low weight flattens the softmax of a doubtful sample);
* rank regularization (RR loss): sort the batch's weights, high group = the top ``beta`` (70 %),
  ``L_RR = max(0, margin1 - (mean_high - mean_low))``;
* relabeling (Eq. 1 of paper 000): from ``relabel_epoch`` on, ``p_max - p_label > margin2`` replaces
  the stored label by the argmax class (see :mod:`.relabeling`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, StepOutput, TrainingSetup
from .relabeling import RELABEL_SCOPES, RelabelTracker, high_group_size, low_importance_mask, relabel_decision

__all__ = ["SCN", "SCNOptions", "rank_regularization"]


def rank_regularization(weights: Tensor, *, beta: float, margin: float) -> Tensor:
    """SCN's RR loss: ``max(0, margin - (mean of the top-beta weights - mean of the rest))``.

    Parameters
    ----------
    weights
        (N,) attention weights of the batch (N >= 2).
    beta
        Fraction in the high-importance group: ``int(N * beta)`` samples, kept within 1..N-1.
    margin
        SCN's ``margin_1``.
    """
    ordered = weights.float().sort(descending=True).values
    k = high_group_size(weights.shape[0], beta)
    return F.relu(margin - (ordered[:k].mean() - ordered[k:].mean()))


@dataclass
class SCNOptions:
    """Options of ``scn`` (SCN's names in parentheses).

    Attributes
    ----------
    beta
        Fraction of the batch in the high-importance group (``beta`` = 0.7).
    margin1
        Rank-regularization margin (``margin_1``): 0.15 in the paper and code; the reference notes
        0.07 for batch 64.
    margin2
        Relabeling margin (``margin_2`` = 0.2; ``delta`` of paper 000's Eq. 1).
    relabel
        Apply the relabeling module.
    relabel_epoch
        First epoch (counting from 1) whose batches are relabeled (``relabel_epoch`` = 10).
    relabel_scope
        ``"all"``: any sample of the batch may be relabeled (the public code, default);
        ``"low"``: only the low-importance group (the paper's description).
    rank_regularization
        Add the RR loss (SCN); SCN-C (paper 000) trains without it.
    rr_weight
        Weight of the RR loss (1 in SCN).
    dropout
        Dropout on the pooled features (``drop_rate`` = 0).
    classifier_bias
        Give the classifier ``fc`` a bias (SCN's public code: yes). ``scn_c`` defaults to false.
    """

    beta: float = 0.7
    margin1: float = 0.15
    margin2: float = 0.2
    relabel: bool = True
    relabel_epoch: int = 10
    relabel_scope: str = "all"
    rank_regularization: bool = True
    rr_weight: float = 1.0
    dropout: float = 0.0
    classifier_bias: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {self.beta}")
        if self.margin1 < 0:
            raise ValueError(f"margin1 must be >= 0, got {self.margin1}")
        if not 0.0 <= self.margin2 < 1.0:
            raise ValueError(f"margin2 must be in [0, 1), got {self.margin2}")
        if self.relabel_epoch < 1:
            raise ValueError(f"relabel_epoch must be >= 1 (epochs count from 1), got {self.relabel_epoch}")
        if self.relabel_scope not in RELABEL_SCOPES:
            raise ValueError(f"relabel_scope must be one of {', '.join(RELABEL_SCOPES)}, got {self.relabel_scope!r}")
        if self.rr_weight < 0:
            raise ValueError(f"rr_weight must be >= 0, got {self.rr_weight}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register_method("scn", options=SCNOptions)
class SCN(Method):
    """Self-Cure Network: attention-weighted logits, rank regularization and relabeling.

    Wang et al., "Suppressing Uncertainties for Large-Scale Facial Expression Recognition", CVPR 2020,
    as revisited in paper 000 (Sec. III-A, Eq. 1 = the relabeling rule).

    Defaults follow SCN's paper and public code where they agree (beta 0.7, margin1 0.15, margin2 0.2,
    relabeling from epoch 10, after the forward of the batch). Where they differ:

    * relabel scope: the public code relabels *every* sample of the batch (default,
      ``relabel_scope="all"``); the paper relabels only the low-importance group (``"low"``);
    * the relabeled label is kept in per-sample state (``state["labels"]``) and used the next time
      the sample is drawn (the public code overwrote the dataset's label array, same effect).

    Prediction uses the attention-weighted logits, as the public code evaluates (the weight is a
    positive scalar per sample, so the predicted class is that of ``fc(x)``).

    ``epoch_record``: ``labels`` (current labels), ``clean_score`` (last attention weight of each
    sample; NaN until the sample is first drawn). ``on_epoch_end`` logs the relabel counts of
    :class:`~noisyfer.methods.relabeling.RelabelTracker` (relabels this epoch, back-and-forth flips).
    """

    signal = "SCN's self-attention importance weight alpha_i: low for uncertain, likely mislabeled faces"

    def __init__(self, *, options: SCNOptions, **common):
        super().__init__(options=options, **common)
        dim = self.backbone.num_features
        self.dropout = nn.Dropout(options.dropout)
        self.fc = nn.Linear(dim, self.num_classes, bias=options.classifier_bias)
        self.attention = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())
        self.relabeling = RelabelTracker(self.state, num_classes=self.num_classes)
        self.state.register("attention", torch.full((self.num_train,), float("nan")))
        self._totals_at_epoch_start: Tensor | None = None

    # -- networks ---------------------------------------------------------------------------
    def heads(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Attention weights (N,) and weighted logits (N, C) of pooled ``features``."""
        x = self.dropout(features)
        weights = self.attention(x)
        return weights.squeeze(1), weights * self.fc(x)

    def forward(self, images: Tensor) -> Tensor:
        return self.heads(self.backbone(images).features)[1]

    # -- hooks ------------------------------------------------------------------------------
    def setup(self, info: TrainingSetup) -> None:
        self.relabeling.reset(info.labels)

    def on_epoch_start(self, epoch: int) -> None:
        self._totals_at_epoch_start = self.relabeling.totals()

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        start = self._totals_at_epoch_start
        if start is None:
            start = torch.zeros(2, dtype=torch.long)
        return self.relabeling.epoch_logs(start)

    def epoch_record(self) -> dict[str, Tensor]:
        return {"labels": self.state["labels"], "clean_score": self.state["attention"]}

    def auxiliary_loss(self, features: Tensor, labels: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Extra loss on the pooled features with the current labels (none here; SCN-C adds L_C)."""
        return None, {}

    # -- training ---------------------------------------------------------------------------
    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        opts = self.options
        labels = self.relabeling.labels(batch.indices)
        features = self.backbone(self.augment.train(batch.images)).features
        weights, logits = self.heads(features)
        ce = F.cross_entropy(logits, labels)
        loss = ce
        logs: dict[str, Tensor] = {"ce": ce.detach(), "attention_mean": weights.detach().float().mean()}
        if opts.rank_regularization:
            rr = rank_regularization(weights, beta=opts.beta, margin=opts.margin1)
            loss = loss + opts.rr_weight * rr
            logs["rr_loss"] = rr.detach()
        extra, extra_logs = self.auxiliary_loss(features, labels)
        if extra is not None:
            loss = loss + extra
            logs.update(extra_logs)
        self.state.update("attention", batch.indices, weights.detach().float())
        if opts.relabel and epoch >= opts.relabel_epoch:
            eligible = low_importance_mask(weights, beta=opts.beta) if opts.relabel_scope == "low" else None
            probs = logits.detach().float().softmax(1)
            new_labels, changed = relabel_decision(probs, labels, margin=opts.margin2, eligible=eligible)
            self.relabeling.apply(batch.indices, new_labels, changed)
        return StepOutput(loss=loss, logits=logits.detach(), logs=logs)
