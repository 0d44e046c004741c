"""Class activation maps (Zhou et al. 2016), as EAC and SMEC use them."""

from __future__ import annotations

import torch


def cam(feature_map: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Class activation maps: every class's classifier weights applied at every spatial position.

    ``cam[n, c, i, j] = sum_d feature_map[n, d, i, j] * weight[c, d]``. Without the bias and
    before pooling, so that averaging the maps over positions gives ``features @ weight.T``. Pass
    ``fc.weight.detach()`` when the maps must not train the classifier (EAC).

    Parameters
    ----------
    feature_map
        (N, D, h, w) last-stage output (``BackboneOutput.feature_map``).
    weight
        (C, D) classifier weights (``fc.weight``).

    Returns
    -------
    torch.Tensor
        (N, C, h, w).
    """
    if feature_map.dim() != 4 or weight.dim() != 2 or feature_map.shape[1] != weight.shape[1]:
        raise ValueError(
            f"cam expects feature_map (N, D, h, w) and weight (C, D) with the same D; got "
            f"{tuple(feature_map.shape)} and {tuple(weight.shape)}"
        )
    return torch.einsum("ndhw,cd->nchw", feature_map, weight)
