"""Label-distribution pieces of LDLVA (Le et al., WACV 2023) as pure functions, plus their evaluation.

Equation numbers refer to the paper. Batches are tensors: ``B`` samples, ``K`` neighbours each,
``C`` classes, ``D`` feature dimensions, ``M`` class centres.

- :func:`aggregate_neighbours`      Eq. 5, the neighbours' predictions weighted by their contributions
- :func:`target_distribution`       Eq. 6, label and neighbourhood mixed by the uncertainty factor
- :func:`soft_cross_entropy`        Eq. 1, cross-entropy against a distribution
- :func:`weighted_center_loss`      Eq. 10, first term: uncertainty-weighted centre loss
- :func:`center_repulsion`          Eq. 10, second term: pairwise repulsion of the class centres
- :func:`update_centers`            the centres' own update (Wen et al. 2016's rule, then repulsion)
- :func:`compare_label_distributions`  KL divergence of learned distributions from known ones
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def aggregate_neighbours(probs: Tensor, contributions: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 5: ``d~_i = sum_k c_k^i p_k / sum_k c_k^i``.

    Parameters
    ----------
    probs
        (B, K, C) predicted distributions of the neighbours.
    contributions
        (B, K) contribution degrees ``c_k^i >= 0`` (Eq. 4); 0 for a neighbour that must not count.

    Returns
    -------
    aggregated
        (B, C); rows whose contributions are all zero are zero.
    has_neighbours
        (B,) bool: the row had a positive total contribution.
    """
    total = contributions.sum(1)
    has = total > 0
    weighted = torch.einsum("bk,bkc->bc", contributions, probs.to(contributions.dtype))
    aggregated = weighted / torch.where(has, total, torch.ones_like(total)).unsqueeze(1)
    return aggregated, has


def target_distribution(one_hot: Tensor, aggregated: Tensor, lam: Tensor, has_neighbours: Tensor) -> Tensor:
    """Eq. 6: ``d_i = (1 - lambda_i) l_i + lambda_i d~_i``; the label alone where no neighbour counts.

    ``one_hot`` (B, C), ``aggregated`` (B, C), ``lam`` (B,), ``has_neighbours`` (B,) bool -> (B, C).
    Gradients reach ``lam`` and ``aggregated`` (Eq. 7-9), not where ``has_neighbours`` is false.
    """
    lam = torch.where(has_neighbours, lam, torch.zeros_like(lam)).unsqueeze(1)
    return one_hot + lam * (aggregated - one_hot)


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Eq. 1 per sample: ``-sum_j d_j log softmax(logits)_j``, (B, C) x (B, C) -> (B,)."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1)


def weighted_center_loss(features: Tensor, centers: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """Eq. 10, first term per sample: ``1/2 w_i ||v_i - mu_{y_i}||^2`` with ``w_i = 1 - lambda_i``.

    ``features`` (B, D), ``centers`` (M, D), ``labels`` (B,) int, ``weights`` (B,) -> (B,).
    """
    diff = features.float() - centers[labels].float()
    return 0.5 * weights * diff.pow(2).sum(1)


def center_repulsion(centers: Tensor, scale: float) -> Tensor:
    """Eq. 10, second term: ``sum_{j != k} exp(-||mu_j - mu_k||^2 / scale)`` (ordered pairs; the
    paper's scale is ``sqrt(D)``)."""
    squared = torch.cdist(centers.float(), centers.float()).pow(2)
    off_diagonal = ~torch.eye(centers.shape[0], dtype=torch.bool, device=centers.device)
    return (torch.exp(-squared / scale) * off_diagonal).sum()  # a product, not a mask selection: no host wait


def repulsion_gradient(centers: Tensor, scale: float) -> Tensor:
    """Gradient of :func:`center_repulsion` with respect to the centres, in closed form, (M, D).

    ``d/d mu_j = -(4 / scale) sum_k exp(-||mu_j - mu_k||^2 / scale) (mu_j - mu_k)`` (each unordered
    pair appears twice in the sum of ordered pairs).
    """
    centers = centers.float()
    diff = centers.unsqueeze(1) - centers.unsqueeze(0)  # (M, M, D): mu_j - mu_k
    weight = torch.exp(-diff.pow(2).sum(-1) / scale)
    return -(4.0 / scale) * torch.einsum("jk,jkd->jd", weight, diff)


@torch.no_grad()
def update_centers(centers: Tensor, features: Tensor, labels: Tensor, weights: Tensor, *, lr: float,
                   repulsion_weight: float, scale: float) -> Tensor:
    """The centres' own update, as the paper prescribes for Eq. 10 ("the same settings as [55]").

    First Wen et al.'s rule with the uncertainty weights ``w_i = 1 - lambda_i``:
    ``mu_j <- mu_j - lr * sum_{i: y_i = j} w_i (mu_j - v_i) / (1 + #{i: y_i = j})``; then one gradient
    step of ``repulsion_weight`` times the repulsion (Eq. 10's second term, weighted by gamma in Eq. 11):
    ``mu <- mu - lr * repulsion_weight * grad``. Returns new centres (M, D); inputs are not changed.
    """
    centers = centers.float()
    m = centers.shape[0]
    one_hot = F.one_hot(labels, m).float()  # (B, M)
    counts = one_hot.sum(0)
    pulled = one_hot.t() @ (weights.float().unsqueeze(1) * features.float())  # sum_i w_i v_i per class
    weight_sum = one_hot.t() @ weights.float()
    delta = (weight_sum.unsqueeze(1) * centers - pulled) / (1.0 + counts).unsqueeze(1)
    centers = centers - lr * delta
    if repulsion_weight:
        centers = centers - lr * repulsion_weight * repulsion_gradient(centers, scale)
    return centers


def kl_divergence(reference: np.ndarray, learned: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """Per-sample ``KL(reference || learned)`` in nats, (N, C) x (N, C) -> (N,).

    ``learned`` is floored at ``eps`` and renormalised first, so that a one-hot row (or a learned zero)
    gives a finite, comparable number; ``0 log 0 = 0`` for the reference.
    """
    p = np.asarray(reference, dtype=np.float64)
    q = np.maximum(np.asarray(learned, dtype=np.float64), eps)
    q = q / q.sum(1, keepdims=True)
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(f"expected two (N, C) arrays of the same shape, got {p.shape} and {q.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(1)


def compare_label_distributions(learned: np.ndarray, reference: np.ndarray, given_labels: np.ndarray, *,
                                eps: float = 1e-6) -> dict[str, float]:
    """How close learned training distributions are to known ones, against the one-hot given labels.

    Parameters
    ----------
    learned
        (N, C) learned label distributions (LDLVA's ``epoch_record()["label_dist"]``).
    reference
        (N, C) known distributions, e.g. the simulator's ``label_dist`` column.
    given_labels
        (N,) the (noisy) training labels the method was given.

    Returns
    -------
    dict
        ``kl_learned`` and ``kl_one_hot``: mean ``KL(reference || .)`` of the learned distributions
        and of the one-hot given labels (same ``eps`` floor, so the two are comparable);
        ``argmax_learned`` and ``argmax_given``: share of samples whose argmax (resp. given label) is
        the reference's argmax.
    """
    learned = np.asarray(learned, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    given = np.asarray(given_labels, dtype=np.int64)
    if given.shape != (reference.shape[0],):
        raise ValueError(f"given_labels must have shape ({reference.shape[0]},), got {given.shape}")
    one_hot = np.eye(reference.shape[1])[given]
    dominant = reference.argmax(1)
    return {
        "kl_learned": float(kl_divergence(reference, learned, eps=eps).mean()),
        "kl_one_hot": float(kl_divergence(reference, one_hot, eps=eps).mean()),
        "argmax_learned": float((learned.argmax(1) == dominant).mean()),
        "argmax_given": float((given == dominant).mean()),
    }


def default_repulsion_scale(feature_dim: int) -> float:
    """The paper's scale of the repulsion: ``sqrt(V)`` for V-dimensional features."""
    return math.sqrt(feature_dim)
