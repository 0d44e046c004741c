"""RUL-C (paper 000): RUL plus the center loss on its embeddings."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..registry import register_method
from .center_loss import CenterLoss, CenterLossOptions
from .rul import RUL, RULOptions

__all__ = ["RULC", "RULCOptions"]


@dataclass
class RULCOptions(CenterLossOptions, RULOptions):
    """Options of ``rul_c``: those of ``rul`` plus the center loss.

    Attributes
    ----------
    gamma
        Balance ratio of Eq. 3 (paper 000: 0.01 on RAF-DB; see
        :data:`~noisyfer.methods.center_loss.PAPER_GAMMA`).
    aux_center
        Also apply the center loss (own centers, same gamma) to the auxiliary (log-variance) branch's
        embedding, as paper 000 enhances the auxiliary branches of RUL-C and DMUE-C with L_Total.
    center_alpha
        Center update rate (Wen et al.'s alpha).
    center_reduction
        ``"mean"`` over the batch (default) or ``"sum"`` (paper 000's formula as printed).
    classifier_bias
        Bias of the classifier ``fc``: false (default) as paper 000's Eq. 2 ("this work sets
        b_j = 0"); true reproduces noisyfer's ``rul_c`` before issue 14 (RUL's biased classifier).
    """

    aux_center: bool = True
    classifier_bias: bool = False


@register_method("rul_c", options=RULCOptions)
class RULC(RUL):
    """RUL-C: RUL with embedding proximity (center loss on the mean and auxiliary embeddings).

    Chen, Kok, Chan, IEEE Access 2024 (paper 000), Eq. 3: the add-up loss plus ``gamma * L_C`` where
    ``L_C`` pulls each sample's (unmixed) mean embedding ``mu_i`` (what the classifier sees at test)
    to the center of its current label. Paper 000 also enhances RUL's auxiliary branch with the
    center loss; we read the auxiliary branch as the log-variance head and give its embedding its own
    centers (``aux_center=true``, default; ``false`` keeps the mean branch only). With ``relabel=true``
    the current labels are the relabeled ones, so relabeled samples move to their new centers.
    gamma defaults to the paper's RAF-DB value 0.01; see :mod:`noisyfer.methods.center_loss` for the
    center update and the mean-vs-sum choice.
    """

    def __init__(self, *, options: RULCOptions, **common):
        super().__init__(options=options, **common)
        make = lambda: CenterLoss(num_classes=self.num_classes, feature_dim=options.feature_dim,  # noqa: E731
                                  alpha=options.center_alpha, reduction=options.center_reduction)
        self.center_loss = make()
        self.aux_center_loss = make() if options.aux_center else None

    def auxiliary_loss(self, mu: Tensor, logvar: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        lc = self.center_loss(mu, labels)
        logs = {"center_loss": lc.detach()}
        total = lc
        if self.aux_center_loss is not None:
            aux = self.aux_center_loss(logvar, labels)
            logs["aux_center_loss"] = aux.detach()
            total = total + aux
        return self.options.gamma * total, logs
