"""Center loss: the embedding-proximity regularizer of the SCN-C / RUL-C / DMUE-C framework.

Paper 000 (embedding proximity, "relabel inconsistency") adds the center loss of Wen et al. [56] to
a relabeling FER model so that a relabeled sample's feature is pulled to its *new* class center:

    L_C = sum_i ||x_i - c_{y_i}||_2^2                              (paper text, between Eq. 1 and 2)
    L_Total = L_S + gamma * L_C                                    (Eq. 3)

This module is a component, not a registered method: ``scn_c``, ``rul_c`` and ``dmue_c`` own one.
:class:`CenterLoss` returns the *unweighted* ``L_C``; the caller multiplies by ``gamma``
(:data:`PAPER_GAMMA` holds the paper's per-dataset values).

Center update (no gradient; the centers are buffers so they are checkpointed). The paper: "the
class center is updated by averaging all deep features of the same class in each iteration". We use
the rule of the center loss it adopts (Wen et al. 2016, Eq. 4), which is that average::

    delta_j = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)
    c_j    <- c_j - alpha * delta_j

With ``alpha = 1`` the new center is the mean of the old center and the batch's features of class j
(the old center counting as one sample); ``alpha = 0.5`` (Wen et al.'s value, our default) moves
half-way there. Classes absent from the batch keep their center. Centers start at zero.

Reduction. The paper writes ``L_C`` as a sum over the batch, but it uses the same gamma for batch
1024 (SCN) and 64 (RUL, DMUE) and the center loss it cites normalises by the batch size in its
released layer; a plain sum would make the term 16x stronger at batch 1024. The default is therefore
the per-sample mean (``reduction="mean"``); ``reduction="sum"`` gives the sum as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["CenterLoss", "CenterLossOptions", "PAPER_GAMMA", "REDUCTIONS", "center_loss", "center_update", "check_center_options"]

#: Balance ratio gamma of Eq. 3 per dataset, from paper 000's implementation details
#: ("0.02, 0.01, 0.1 and 0.002" for AffectNet, RAF-DB, FERPLUS and FER2013).
PAPER_GAMMA: dict[str, float] = {"affectnet": 0.02, "rafdb": 0.01, "ferplus": 0.1, "fer2013": 0.002}

REDUCTIONS = ("mean", "sum")


def center_loss(features: Tensor, labels: Tensor, centers: Tensor, *, reduction: str = "mean") -> Tensor:
    """``L_C``: squared Euclidean distance of each feature to its class center, summed or averaged.

    Parameters
    ----------
    features
        (N, D) features; gradients flow into them (not into ``centers``).
    labels
        (N,) int64 class of each feature.
    centers
        (C, D) class centers.
    reduction
        ``"mean"`` (divide by N) or ``"sum"`` (the paper's written formula).

    Returns
    -------
    Tensor
        Float32 scalar.
    """
    diff = features.float() - centers.detach().float()[labels]
    per_sample = diff.pow(2).sum(1)
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


@torch.no_grad()
def center_update(centers: Tensor, features: Tensor, labels: Tensor, *, alpha: float) -> Tensor:
    """New centers after one iteration of Wen et al.'s averaging rule (see the module docstring).

    Runs on the device without reading values back (scatter-adds, no ``bincount``). In a distributed
    run every rank has the whole global batch's features (:mod:`noisyfer.engine.distributed`), so the
    sums are already global: summing them over the ranks again would count every sample once per rank.
    """
    num_classes = centers.shape[0]
    x = features.detach().float()
    sums = torch.zeros(num_classes, x.shape[1], device=x.device, dtype=torch.float32)
    sums.index_add_(0, labels, x)
    counts = torch.zeros(num_classes, device=x.device, dtype=torch.float32)
    counts.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float32))
    c = centers.float()
    delta = (counts[:, None] * c - sums) / (1.0 + counts[:, None])
    return (c - alpha * delta).to(centers.dtype)


class CenterLoss(nn.Module):
    """Center loss of Wen et al. (2016) as used by paper 000, with centers updated by averaging.

    Parameters
    ----------
    num_classes, feature_dim
        Shape of the :attr:`centers` buffer.
    alpha
        Center update rate in (0, 1] (Wen et al.'s alpha; 1 = plain average with the old center).
    reduction
        ``"mean"`` over the batch (default; gamma then does not depend on the batch size) or ``"sum"``
        (the formula as printed in paper 000).

    Notes
    -----
    ``forward`` returns the unweighted ``L_C`` (float32, also under autocast) and, in training mode,
    updates :attr:`centers` from the same (detached) features after computing the loss, so the loss
    of a batch is measured against the centers of the previous iterations.

    Examples
    --------
    >>> loss = CenterLoss(num_classes=2, feature_dim=1, alpha=1.0)
    >>> float(loss(torch.tensor([[2.0], [4.0]]), torch.tensor([0, 0])))  # centers start at 0
    10.0
    >>> loss.centers.tolist()   # (0 + 2 + 4) / (1 + 2)
    [[2.0], [0.0]]
    """

    centers: Tensor

    def __init__(self, *, num_classes: int, feature_dim: int, alpha: float = 0.5, reduction: str = "mean"):
        super().__init__()
        if num_classes < 1 or feature_dim < 1:
            raise ValueError(f"num_classes and feature_dim must be >= 1, got {num_classes}, {feature_dim}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha (center update rate) must be in (0, 1], got {alpha}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)
        self.alpha = float(alpha)
        self.reduction = reduction
        self.register_buffer("centers", torch.zeros(self.num_classes, self.feature_dim))

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        if features.dim() != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"CenterLoss expects features (N, {self.feature_dim}), got {tuple(features.shape)}")
        if labels.shape != features.shape[:1]:
            raise ValueError(f"CenterLoss: labels {tuple(labels.shape)} do not match features {tuple(features.shape)}")
        labels = labels.long()
        loss = center_loss(features, labels, self.centers, reduction=self.reduction)
        if self.training:
            with torch.no_grad():
                self.centers.copy_(center_update(self.centers, features, labels, alpha=self.alpha))
        return loss

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, feature_dim={self.feature_dim}, alpha={self.alpha}, "
                f"reduction={self.reduction!r}")


def check_center_options(options) -> None:
    """Validate the ``gamma``, ``center_alpha`` and ``center_reduction`` options of a ``*_c`` method."""
    if options.gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {options.gamma}")
    if not 0.0 < options.center_alpha <= 1.0:
        raise ValueError(f"center_alpha must be in (0, 1], got {options.center_alpha}")
    if options.center_reduction not in REDUCTIONS:
        raise ValueError(
            f"center_reduction must be one of {', '.join(REDUCTIONS)}, got {options.center_reduction!r}")


@dataclass
class CenterLossOptions:
    """The center-loss options a ``*_c`` method's options add to its base method's (mixed in first).

    Attributes
    ----------
    gamma
        Balance ratio of paper 000's Eq. 3 (see :data:`PAPER_GAMMA`).
    center_alpha
        Center update rate (Wen et al.'s alpha).
    center_reduction
        ``"mean"`` over the batch (default) or ``"sum"`` (paper 000's formula as printed).
    """

    gamma: float = PAPER_GAMMA["rafdb"]
    center_alpha: float = 0.5
    center_reduction: str = "mean"

    def __post_init__(self) -> None:
        base = getattr(super(), "__post_init__", None)
        if base is not None:
            base()
        check_center_options(self)
