"""Class activation maps (Zhou et al. 2016), as EAC and SMEC use them."""

from __future__ import annotations

import math

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


#: How a mirrored-back map is paired with the original's: ``grid`` by the pixel each cell looks at,
#: ``index`` by array index (EAC's public code).
FLIP_ALIGNMENTS = ("grid", "index")


def flip_shift(image_side: int, map_side: int, reduction: int) -> int:
    """Cells by which a mirrored-back feature map is displaced from the map of the unmirrored image.

    The stride-2 layers of a ResNet (3x3 pad 1, 7x7 pad 3, 3x3 max-pool pad 1) put cell ``j`` of the
    last map over input pixel ``reduction * j``. Run on the mirror image, cell ``j'`` looks at pixel
    ``reduction * j'`` of the mirror, i.e. ``image_side - 1 - reduction * j'`` of the image, so after
    mirroring the map back (``j' = map_side - 1 - j``) cell ``j`` sits at
    ``reduction * j + offset`` with ``offset = image_side - 1 - reduction * (map_side - 1)``: only a
    grid with ``offset = 0`` (e.g. 33 px at stride 16) is mirror-symmetric. For a 224 px ResNet-18
    (stride 32, 7x7) the offset is 31 px, for 32 px at stride 16 (2x2) 15 px: index ``j`` of the
    mirrored-back map is then the original's cell ``j + 1``, not ``j``.

    Returns
    -------
    int
        ``round(offset / reduction)``, halves rounded up: cell ``j`` of the mirrored-back map pairs
        with cell ``j + shift`` of the original.
    """
    if image_side < 1 or map_side < 1 or reduction < 1:
        raise ValueError(f"flip_shift needs positive sizes, got image {image_side}, map {map_side}, "
                         f"reduction {reduction}")
    offset = image_side - 1 - reduction * (map_side - 1)
    return math.floor(offset / reduction + 0.5)


def map_stride(image_side: int, map_side: int) -> int | None:
    """The stride ``2^k`` of a ResNet whose ``k`` stride-2 layers (``ceil(side / 2)`` each) turn
    ``image_side`` into ``map_side``; ``None`` when no number of halvings does. Cell ``j`` of such a
    map looks at pixel ``stride * j`` (see :func:`flip_shift`)."""
    side, stride = int(image_side), 1
    while side > map_side:
        side, stride = -(-side // 2), stride * 2
    return stride if side == map_side else None


def check_flip_alignment(alignment: str) -> None:
    """``ValueError`` naming the choices unless ``alignment`` is one of :data:`FLIP_ALIGNMENTS`."""
    if alignment not in FLIP_ALIGNMENTS:
        raise ValueError(f"flip_alignment must be one of {', '.join(FLIP_ALIGNMENTS)}, got {alignment!r}")


def alignment_shift(alignment: str, image_side: int, map_side: int, reduction: int) -> int:
    """The shift :func:`align_mirrored` uses under ``alignment``: :func:`flip_shift` for ``grid``, 0 for
    ``index``."""
    check_flip_alignment(alignment)
    return flip_shift(image_side, map_side, reduction) if alignment == "grid" else 0


def align_mirrored(original: torch.Tensor, mirrored_back: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns of ``original`` and ``mirrored_back`` (both (..., h, w)) that look at the same pixels.

    ``shift`` from :func:`flip_shift`: cell ``j`` of ``mirrored_back`` pairs with cell ``j + shift``
    of ``original``; the ``|shift|`` columns without a partner are left out (0 keeps all).
    """
    width = original.shape[-1]
    if abs(shift) >= width:
        raise ValueError(f"a flip shift of {shift} cells leaves no column of a {width}-wide map to compare")
    if shift > 0:
        return original[..., shift:], mirrored_back[..., :-shift]
    if shift < 0:
        return original[..., :shift], mirrored_back[..., -shift:]
    return original, mirrored_back
