"""SCN-C (paper 000): SCN plus the center loss on the pooled features, without the RR loss."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..registry import register_method
from .center_loss import CenterLoss, CenterLossOptions
from .scn import SCN, SCNOptions

__all__ = ["SCNC", "SCNCOptions"]


@dataclass
class SCNCOptions(CenterLossOptions, SCNOptions):
    """Options of ``scn_c``: those of ``scn`` (RR loss off by default) plus the center loss.

    Attributes
    ----------
    gamma
        Balance ratio of Eq. 3 (paper 000: 0.01 on RAF-DB, 0.02 AffectNet, 0.1 FERPlus, 0.002
        FER2013; see :data:`~noisyfer.methods.center_loss.PAPER_GAMMA`).
    center_alpha
        Center update rate (Wen et al.'s alpha).
    center_reduction
        ``"mean"`` over the batch (default) or ``"sum"`` (paper 000's formula as printed).
    classifier_bias
        Bias of the classifier whose softmax loss L_S (Eq. 2) is trained with the center loss:
        false (default) as paper 000 ("this work sets b_j = 0", after Wen et al.); true reproduces
        noisyfer's ``scn_c`` before issue 14 (SCN's biased classifier).
    """

    rank_regularization: bool = False
    classifier_bias: bool = False


@register_method("scn_c", options=SCNCOptions)
class SCNC(SCN):
    """SCN-C: SCN with embedding proximity (center loss), as configured in paper 000.

    Chen, Kok, Chan, "Enhancing FER under data uncertainty based on embedding proximity", IEEE
    Access 2024: ``L_Total = L_S + gamma * L_C`` (Eq. 3) with ``L_C`` the center loss of the pooled
    backbone features (the ``x_i`` the classifier sees, Eq. 2) against the centers of their
    *current* labels, so a relabeled sample is pulled to its new class center; relabeling by Eq. 1
    as in ``scn``. Paper 000 drops SCN's RR loss (``rank_regularization=false`` by default; the
    attention weighting stays) and sets the classifier bias of Eq. 2 to zero
    (``classifier_bias=false``). gamma defaults to the paper's RAF-DB value 0.01. The center update
    and the mean-vs-sum choice are documented in :mod:`noisyfer.methods.center_loss`.
    """

    def __init__(self, *, options: SCNCOptions, **common):
        super().__init__(options=options, **common)
        self.center_loss = CenterLoss(num_classes=self.num_classes, feature_dim=self.backbone.num_features,
                                      alpha=options.center_alpha, reduction=options.center_reduction)

    def auxiliary_loss(self, features: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        lc = self.center_loss(features, labels)
        return self.options.gamma * lc, {"center_loss": lc.detach()}
