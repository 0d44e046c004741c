"""Box arithmetic and batched non-maximum suppression, in torch (CPU or CUDA), without torchvision.

Boxes are ``(..., 4)`` tensors ``x1, y1, x2, y2`` in continuous pixel coordinates (width = x2 - x1).
"""

from __future__ import annotations

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """Areas of ``(..., 4)`` boxes (0 for empty or inverted boxes)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def pairwise_overlap(a: Tensor, b: Tensor, *, mode: str = "union") -> Tensor:
    """Overlap of every box of ``a (..., K, 4)`` with every box of ``b (..., L, 4)``: ``(..., K, L)``.

    ``mode="union"``: intersection over union (IoU). ``mode="min"``: intersection over the smaller
    area, which MTCNN's last stage uses so that a box inside a bigger one is suppressed.
    """
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a, area_b = box_area(a)[..., :, None], box_area(b)[..., None, :]
    if mode == "union":
        denom = area_a + area_b - inter
    elif mode == "min":
        denom = torch.minimum(area_a, area_b)
    else:
        raise ValueError(f"mode must be 'union' or 'min', got {mode!r}")
    return inter / denom.clamp(min=torch.finfo(inter.dtype).tiny)


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, *, threshold: float, mode: str = "union") -> Tensor:
    """Greedy non-maximum suppression within each group, all groups at once.

    Within a group, boxes are visited by decreasing score; a box is kept unless a kept box visited
    before it overlaps it by more than ``threshold`` (:func:`pairwise_overlap` with ``mode``). Boxes
    of different groups never suppress each other.

    Parameters
    ----------
    boxes
        ``(N, 4)``.
    scores
        ``(N,)``.
    groups
        ``(N,)`` integer group of each box (e.g. image index, or image and pyramid scale).
    threshold
        Overlap above which the lower-scored box is suppressed.
    mode
        ``"union"`` (IoU) or ``"min"``.

    Returns
    -------
    Tensor
        int64 indices of the kept boxes, by decreasing score (ties: lower index first).

    Notes
    -----
    Groups are padded to the largest group size K and suppression is solved as a fixed point: with
    boxes sorted by score, ``keep[i] = not any(keep[j] and overlap[j, i] > threshold for j < i)`` is a
    triangular system, so iterating it from "all kept" reaches the greedy result exactly after at most
    (longest chain of suppressions + 1) vectorised steps, each one ``(G, K, K)`` operation, with no
    per-box Python loop and no host-device copies besides the convergence test.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    order = order[torch.sort(groups[order], stable=True).indices]  # by group, then by decreasing score
    _, group_of = torch.unique(groups[order], return_inverse=True)
    counts = torch.bincount(group_of)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(n, device=boxes.device) - starts[group_of]
    num_groups, k = counts.shape[0], int(counts.max())
    padded = boxes.new_zeros(num_groups, k, 4)
    padded[group_of, slot] = boxes[order].to(padded.dtype)
    valid = torch.zeros(num_groups, k, dtype=torch.bool, device=boxes.device)
    valid[group_of, slot] = True
    earlier = torch.ones(k, k, dtype=torch.bool, device=boxes.device).tril(-1)  # [i, j]: j visited before i
    suppresses = (pairwise_overlap(padded, padded, mode=mode) > threshold) & earlier & valid[:, None, :]
    keep = valid.clone()
    while True:
        new = valid & ~(suppresses & keep[:, None, :]).any(-1)
        if torch.equal(new, keep):
            break
        keep = new
    kept = order[keep[group_of, slot]]
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]


def regress_boxes(boxes: Tensor, offsets: Tensor) -> Tensor:
    """Boxes moved by regression ``offsets`` (dx1, dy1, dx2, dy2) in units of the box's width and height."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * wh


def square_boxes(boxes: Tensor) -> Tensor:
    """Squares with the boxes' centres and side = the longer side (MTCNN's input crops are square)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)
