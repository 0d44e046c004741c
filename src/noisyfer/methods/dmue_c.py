"""DMUE-C (paper 000): DMUE plus the center loss on the main and the auxiliary branches."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..registry import register_method
from .center_loss import CenterLoss, CenterLossOptions
from .dmue import DMUE, DMUEOptions, DMUEOutputs

__all__ = ["DMUEC", "DMUECOptions"]


@dataclass
class DMUECOptions(CenterLossOptions, DMUEOptions):
    """Options of ``dmue_c``: those of ``dmue`` plus the center loss.

    Attributes
    ----------
    gamma
        Weight of the center loss (paper 000's balance ratio; 0.01 for RAF-DB, 0.02 AffectNet, 0.1
        FERPlus, 0.002 FER2013, see :data:`~noisyfer.methods.center_loss.PAPER_GAMMA`). Not DMUE's
        own gamma, which is ``sp_weight``.
    aux_center
        Also apply the center loss (own centers per branch, same gamma) to the auxiliary branches, as
        paper 000 does ("the auxiliary branches ... are enhanced with L_Total").
    center_alpha
        Center update rate (Wen et al.'s alpha).
    center_reduction
        ``"mean"`` (default) or ``"sum"`` over the batch, see :mod:`noisyfer.methods.center_loss`.
    """

    aux_center: bool = True


@register_method("dmue_c", options=DMUECOptions)
class DMUEC(DMUE):
    """DMUE-C: DMUE with embedding proximity (center loss) on every branch, as in paper 000.

    Chen, Kok and Chan, IEEE Access 2024, Eq. 3 ``L_Total = L_S + gamma * L_C`` applied to each
    classification loss of DMUE: the main branch's (weighted by DMUE's ramp-up, like its CE) with
    centers of the K classes, and auxiliary branch c's (weighted by the ramp-down, like its CE) with
    its own K-1 centers, over the samples not labelled c with their renumbered labels; the auxiliary
    terms are averaged over the branches like L_aux. ``L_C`` is measured on the pooled features
    before dropout and the BN neck, the place of metric losses in a BN-neck head (the neck's
    normalisation is what the classifier sees). Everything else is ``dmue`` (see its docstring);
    gamma defaults to the paper's RAF-DB value 0.01.
    """

    method_name = "dmue_c"

    def __init__(self, *, options: DMUECOptions, **common):
        super().__init__(options=options, **common)
        k, dim = self.num_classes, self.backbone.num_features
        kwargs = {"feature_dim": dim, "alpha": options.center_alpha, "reduction": options.center_reduction}
        self.center_main = CenterLoss(num_classes=k, **kwargs)
        self.center_aux = nn.ModuleList(CenterLoss(num_classes=k - 1, **kwargs) for _ in range(k)) \
            if options.aux_center else nn.ModuleList()

    def extra_loss(self, out: DMUEOutputs, labels: Tensor, counts: list[int], *, up: float,
                   down: float) -> tuple[Tensor, dict]:
        k = self.num_classes
        main = self.center_main(out.pooled[k], labels)
        logs = {"center_main": main.detach()}
        loss = up * main
        if len(self.center_aux):
            # The samples of each class are a contiguous run of the label-sorted batch, so the rows of
            # branch c (label != c) are found from the host-side counts without another sync.
            order = torch.argsort(labels, stable=True)
            start, terms = 0, []
            for c, count in enumerate(counts):
                rows = torch.cat([order[:start], order[start + count:]])
                start += count
                renumbered = labels.index_select(0, rows)
                renumbered = renumbered - (renumbered > c).long()
                terms.append(self.center_aux[c](out.pooled[c].index_select(0, rows), renumbered))
            aux = torch.stack(terms).mean()
            logs["center_aux"] = aux.detach()
            loss = loss + down * aux
        return self.options.gamma * loss, logs
