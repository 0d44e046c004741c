"""The loss terms and schedules of DMUE as small pure functions (used by ``dmue`` and ``dmue_c``).

She, Hu, Shi, Wang, Shen and Mei, "Dive into Ambiguity: Latent Distribution Mining and Pairwise
Uncertainty Estimation for Facial Expression Recognition", CVPR 2021. Notation: K classes, a batch
of N samples with labels y; auxiliary branch c is a (K-1)-way classifier over the classes other
than c; "main" is the K-way branch kept for inference.

- :func:`ramp_up` / :func:`ramp_down`: weights of the main-branch terms and of the auxiliary
  losses over the epochs; :func:`sp_weight_for_steps`: L_sp's weight for a run's number of ramp steps.
- :func:`main_branch_dead`: the collapse test (main cross-entropy at chance after the ramp).
- :func:`auxiliary_targets`, :func:`auxiliary_ce`: branch c learns from the samples not labelled c,
  their labels renumbered to 0..K-2.
- :func:`sharpen`, :func:`latent_distribution`: the mined latent distribution of a sample labelled
  c (branch c's sharpened prediction, 0 inserted at c) and :func:`soft_loss` (L_soft).
- :func:`sp_loss`: similarity-preserving term L_sp between auxiliary logits and main features.
- :func:`class_similarity`: per-class mean cosine similarity in the batch, the input (with the
  one-hot label) of the pairwise uncertainty MLP.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DEAD_CE_FRACTION",
    "IGNORE",
    "RAFDB_RAMP_STEPS",
    "auxiliary_ce",
    "auxiliary_targets",
    "class_similarity",
    "has_enough_per_class",
    "latent_distribution",
    "ramp_down",
    "ramp_up",
    "sharpen",
    "soft_loss",
    "main_branch_dead",
    "sp_loss",
    "sp_weight_for_steps",
]

#: Steps before DMUE's main terms reach full weight on RAF-DB in the public recipe: 12,271 training
#: faces at batch 72 are 170 steps per epoch, times the ramp epoch 10.
RAFDB_RAMP_STEPS = (12271 // 72) * 10
#: A main branch whose mean cross-entropy over an epoch is at least this fraction of ln K (chance)
#: has learned nothing (at 40 % symmetric noise a calibrated model's is about 0.71 ln 7).
DEAD_CE_FRACTION = 0.97

#: Target of the rows an auxiliary branch must not learn from (``F.cross_entropy``'s ignore_index).
IGNORE = -100


def ramp_up(completed_epochs: float, ramp_epoch: float) -> float:
    """``exp(-5 (1 - e/a)^2)`` for ``e <= a``, else 1: the weight of the main-branch terms.

    ``e`` counts completed epochs (0 during the first one), as DMUE's public code; ``a`` is the
    ramp epoch (``a = 0`` means no ramp).
    """
    if ramp_epoch <= 0 or completed_epochs > ramp_epoch:
        return 1.0
    return math.exp(-5.0 * (1.0 - completed_epochs / ramp_epoch) ** 2)


def ramp_down(completed_epochs: float, ramp_epoch: float) -> float:
    """``exp(-(1 - a/e)^2)`` for ``e >= a``, else 1: the weight of the auxiliary losses."""
    if completed_epochs < ramp_epoch or completed_epochs <= 0:
        return 1.0
    return math.exp(-((1.0 - ramp_epoch / completed_epochs) ** 2))


def sp_weight_for_steps(sp_weight: float, ramp_steps: int | None, reference_steps: int = RAFDB_RAMP_STEPS, *,
                        power: float = 2.0) -> float:
    """L_sp's weight for a run whose main terms reach full weight after ``ramp_steps`` steps.

    ``sp_weight * min(1, ramp_steps / reference_steps) ** power``: the paper's weight (1000) was set
    for RAF-DB, where the auxiliary branches learn for :data:`RAFDB_RAMP_STEPS` (1,700) steps before
    the ramp ends; a run with fewer ramp steps gets less, RAF-DB-sized or larger runs get the paper's
    weight. ``ramp_steps`` None (unknown, or no ramp) keeps ``sp_weight``.

    >>> sp_weight_for_steps(1000.0, 1700), round(sp_weight_for_steps(1000.0, 150), 3)
    (1000.0, 7.785)
    """
    if ramp_steps is None or ramp_steps <= 0:
        return float(sp_weight)
    return float(sp_weight) * min(1.0, ramp_steps / reference_steps) ** power


def main_branch_dead(mean_ce: float, num_classes: int, fraction: float = DEAD_CE_FRACTION) -> bool:
    """True when an epoch's mean main-branch cross-entropy is at chance: ``>= fraction * ln K``.

    >>> main_branch_dead(1.94, 7), main_branch_dead(1.40, 7)
    (True, False)
    """
    return mean_ce >= fraction * math.log(num_classes)


def has_enough_per_class(class_counts: list[int], minimum: int = 2) -> bool:
    """DMUE trains on a batch only if every class has at least ``minimum`` (2) samples in it."""
    return min(class_counts) >= minimum


def auxiliary_targets(labels: Tensor, num_classes: int) -> Tensor:
    """(K, N) targets of the auxiliary branches: row c holds y renumbered without class c
    (``y`` if ``y < c``, ``y - 1`` if ``y > c``) and :data:`IGNORE` where ``y == c``.

    >>> auxiliary_targets(torch.tensor([0, 1, 2]), 3).tolist()
    [[-100, 0, 1], [0, -100, 1], [0, 1, -100]]
    """
    branch = torch.arange(num_classes, device=labels.device).view(-1, 1)
    y = labels.view(1, -1)
    shifted = y - (y > branch).long()
    return torch.where(y == branch, torch.full_like(shifted, IGNORE), shifted)


def auxiliary_ce(aux_logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over branches of each branch's mean cross-entropy over its own samples (L_aux).

    Parameters
    ----------
    aux_logits
        (K, N, K-1) logits of every auxiliary branch for every sample.
    targets
        (K, N) from :func:`auxiliary_targets` (ignored rows contribute nothing).
    """
    k, n, _ = aux_logits.shape
    per_row = F.cross_entropy(aux_logits.reshape(k * n, -1).float(), targets.reshape(-1), ignore_index=IGNORE,
                              reduction="none").view(k, n)
    used = (targets != IGNORE).float()
    return ((per_row * used).sum(1) / used.sum(1).clamp_min(1.0)).mean()


def sharpen(probs: Tensor, temperature: float) -> Tensor:
    """``p^(1/T) / sum(p^(1/T))`` along the last dimension (T > 1 flattens, T < 1 sharpens)."""
    powered = probs.float().pow(1.0 / temperature)
    return powered / powered.sum(dim=-1, keepdim=True)


def latent_distribution(own_logits: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """The mined latent distribution of each sample (the soft label of L_soft), without gradient.

    Parameters
    ----------
    own_logits
        (N, K-1) logits of the auxiliary branch of each sample's own label (branch ``y_i`` for
        sample i), over the classes other than ``y_i`` in increasing order.
    labels
        (N,) labels y.
    temperature
        T of :func:`sharpen` (DMUE: 1.2).

    Returns
    -------
    Tensor
        (N, K): the sharpened softmax spread over the other classes, 0 at ``y_i``.
    """
    soft = sharpen(own_logits.detach().float().softmax(dim=1), temperature)
    n, k_minus_1 = soft.shape
    column = torch.arange(k_minus_1 + 1, device=soft.device).view(1, -1)
    y = labels.view(-1, 1)
    source = (column - (column > y).long()).clamp(max=k_minus_1 - 1)
    return torch.where(column == y, torch.zeros((), device=soft.device), soft.gather(1, source))


def soft_loss(main_logits: Tensor, labels: Tensor, latent: Tensor) -> Tensor:
    """L_soft: mean over (N, K) of ``(softmax(z) with 0 at y - latent)^2``."""
    probs = main_logits.float().softmax(dim=1)
    probs = probs.scatter(1, labels.view(-1, 1), 0.0)
    return (probs - latent).pow(2).mean()


def _row_normalized_gram(x: Tensor, keep: Tensor) -> Tensor:
    """Gram matrices of ``x`` (..., N, d) restricted to ``keep`` (..., N) rows and columns, each
    row L2-normalised over the kept columns (rows and columns outside ``keep`` are 0)."""
    gram = x @ x.transpose(-1, -2)
    mask = keep.unsqueeze(-1) & keep.unsqueeze(-2)
    return F.normalize(gram * mask, p=2, dim=-1)


def sp_loss(aux_logits: Tensor, main_features: Tensor, labels: Tensor) -> Tensor:
    """L_sp: similarity preservation between every auxiliary branch and the main branch.

    For branch c, over the n_c samples not labelled c: ``G_aux = Z_c Z_c^T`` (auxiliary logits) and
    ``G_main = H H^T`` (the main branch's classifier inputs), each row L2-normalised; the term is
    ``sum((G_aux - G_main)^2) / n_c^2`` (MSE over the n_c x n_c matrix), averaged over the branches.

    Parameters
    ----------
    aux_logits
        (K, N, K-1) logits of the auxiliary branches (rows of samples labelled c are ignored).
    main_features
        (N, D) features the main classifier receives.
    labels
        (N,) labels.
    """
    k = aux_logits.shape[0]
    keep = labels.view(1, -1) != torch.arange(k, device=labels.device).view(-1, 1)  # (K, N)
    g_aux = _row_normalized_gram(aux_logits.float(), keep)
    g_main = _row_normalized_gram(main_features.float().unsqueeze(0).expand(k, -1, -1), keep)
    count = keep.float().sum(1)
    per_branch = (g_aux - g_main).pow(2).sum(dim=(1, 2)) / count.pow(2).clamp_min(1.0)
    return per_branch.mean()


def class_similarity(features: Tensor, labels: Tensor, num_classes: int, eps: float = 1e-8) -> Tensor:
    """Per-class mean cosine similarity of each sample to the batch, min-max scaled per row.

    ``m[i, c] = mean_{j: y_j = c} cos(f_i, f_j)`` (a sample of class c counts itself), then
    ``(m - min_c m) / (max_c m - min_c m)`` per row. Every class must be present in the batch
    (DMUE skips batches without two samples of each class). ``eps`` guards the divisions.

    Returns
    -------
    Tensor
        (N, K) in [0, 1].
    """
    unit = F.normalize(features.float(), p=2, dim=1, eps=eps)
    cosine = unit @ unit.t()
    one_hot = F.one_hot(labels, num_classes).float()
    mean = (cosine @ one_hot) / one_hot.sum(0).clamp_min(1.0)
    low = mean.min(dim=1, keepdim=True).values
    high = mean.max(dim=1, keepdim=True).values
    return (mean - low) / (high - low).clamp_min(eps)
