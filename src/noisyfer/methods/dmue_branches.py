"""DMUE's network pieces: K+1 copies of the last ResNet stage and their heads.

The main branch is the backbone's own ``layer4``; auxiliary branch c is ``copy.deepcopy`` of it
(so pretrained weights start in every branch). Every branch sees the whole batch once.

Two ways to run the K+1 stages, same numbers (``tests/test_method_dmue.py`` checks it):

``"loop"``
    One forward per branch. The default: it needs no extra memory, and on CPU it is the faster one
    (``resnet_small``, 48 px, batch 64: the stages' forward + backward took 0.65x the time of
    ``"batched"``, a whole step 0.75x; the grouped convolution ``"batched"`` becomes is slow there).
``"batched"``
    One vmapped forward over the branches' stacked parameters (``torch.func``; a convolution with
    batched weights runs as one grouped convolution): one kernel per layer instead of K+1 on an
    accelerator, at the cost of a stacked copy of the K+1 stages' weights (and their gradients) per
    step; batch-norm running statistics are written back to each branch. Not yet measured on a GPU:
    ``benchmarks/bench_dmue_branches.py`` compares the two on the machine at hand.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BRANCH_FORWARDS", "BranchNecks", "BranchStages"]

BRANCH_FORWARDS = ("loop", "batched")


class BranchStages(nn.Module):
    """``num_aux`` deep copies of the last stage; runs them with the main stage and pools.

    Parameters
    ----------
    main
        The backbone's last stage, copied ``num_aux`` times. It is not stored here (it stays a part
        of the backbone, whose state dict saves it) but passed to :meth:`forward`.
    num_aux
        Number of auxiliary copies (K).
    mode
        ``"loop"`` or ``"batched"`` (see the module docstring).
    """

    def __init__(self, main: nn.Module, num_aux: int, *, mode: str = "loop"):
        super().__init__()
        if mode not in BRANCH_FORWARDS:
            raise ValueError(f"branch_forward must be one of {', '.join(BRANCH_FORWARDS)}, got {mode!r}")
        self.mode = mode
        self.aux = nn.ModuleList(copy.deepcopy(main) for _ in range(num_aux))

    def forward(self, trunk: Tensor, main: nn.Module) -> Tensor:
        """(N, C, h, w) layer3 output -> (K+1, N, D) globally average-pooled last-stage features of the
        auxiliary branches 0..K-1 and of ``main`` (index K)."""
        stages = [*self.aux, main]
        if self.mode == "batched":
            maps = _batched_forward(stages, trunk, update_buffers=self.training)
        else:
            maps = torch.stack([stage(trunk) for stage in stages])
        return maps.mean(dim=(-2, -1))


def _batched_forward(stages: list[nn.Module], x: Tensor, *, update_buffers: bool) -> Tensor:
    """Run structurally identical ``stages`` on the same input as one vmapped call: (S, N, ...)."""
    from torch.func import functional_call, vmap

    template = stages[0]
    params = {name: torch.stack([dict(s.named_parameters())[name] for s in stages])
              for name, _ in template.named_parameters()}
    buffers = {name: torch.stack([dict(s.named_buffers())[name] for s in stages])
               for name, _ in template.named_buffers()}

    def run(p, b, inputs):
        return functional_call(template, (p, b), (inputs,))

    maps = vmap(run, in_dims=(0, 0, None))(params, buffers, x)
    if update_buffers:  # batch norm updated the stacked copies of the running statistics
        with torch.no_grad():
            for name, stacked in buffers.items():
                for index, stage in enumerate(stages):
                    dict(stage.named_buffers())[name].copy_(stacked[index])
    return maps


class BranchNecks(nn.Module):
    """One BatchNorm1d without bias (the "BN neck") per branch, applied to (B, N, D) at once.

    The bias is fixed at 0 as in DMUE's BN neck (its bias does not train). Running statistics are
    per branch, so the main branch's inference normalisation is not mixed with the auxiliary ones.
    """

    def __init__(self, num_branches: int, dim: int, *, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_branches, self.dim = int(num_branches), int(dim)
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(num_branches, dim))
        self.register_buffer("running_mean", torch.zeros(num_branches, dim))
        self.register_buffer("running_var", torch.ones(num_branches, dim))

    def forward(self, x: Tensor, *, branches: slice = slice(None), track: bool = True) -> Tensor:
        """Normalise ``x`` (b, N, D) with the necks of ``branches``.

        In training mode the batch statistics are used and, if ``track``, folded into the running
        statistics; in eval mode the running statistics are used.
        """
        b, n, d = x.shape
        flat = x.permute(1, 0, 2).reshape(n, b * d)
        weight = self.weight[branches].reshape(-1)
        mean, var = self.running_mean[branches].reshape(-1), self.running_var[branches].reshape(-1)
        if self.training and not track:
            mean = var = None
        out = F.batch_norm(flat, mean, var, weight, None, training=self.training, momentum=self.momentum,
                           eps=self.eps)
        return out.view(n, b, d).permute(1, 0, 2)

    def extra_repr(self) -> str:
        return f"num_branches={self.num_branches}, dim={self.dim}, bias=False"
