"""Early-learning regularization (ELR): cross-entropy plus a pull towards per-sample running targets.

Liu, Niles-Weed, Razavian and Fernandez-Granda, "Early-learning regularization prevents memorization
of noisy labels", NeurIPS 2020. Early in training a network fits the clean majority; ELR keeps each
sample's prediction close to a temporal ensemble of its own earlier predictions, so the noisy labels
it would later memorise are resisted. SMEC (paper 001, Eq. 4) uses it as its classification loss.

With ``p_i = clamp(softmax(z_i), 1e-4, 1 - 1e-4)`` the target of sample ``i`` is updated every time
the sample is seen, and the penalty uses the updated target (as the ELR paper's ``t^(k)`` and its
public code)::

    t_i <- beta * t_i + (1 - beta) * p_i / sum_c p_ic          (detached; t_i starts at 0)
    R   =  lam * mean_i log(1 - <t_i, p_i>)                     (SMEC Eq. 4; ELR Sec. 4)

:class:`ELRRegularizer` is the reusable component (SMEC adds it to its own loss); the registered
method ``elr`` is cross-entropy plus that component.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, StepOutput, TrainingSetup
from .sample_state import SampleState

__all__ = ["ELR", "ELROptions", "ELRRegularizer", "elr_penalty", "elr_probabilities", "elr_target_update",
           "target_agreement"]

#: Probabilities are clamped to [EPS, 1 - EPS] so that log(1 - <t, p>) stays finite (ELR's value).
PROB_CLAMP = 1e-4


def elr_probabilities(logits: Tensor) -> Tensor:
    """``clamp(softmax(logits), 1e-4, 1 - 1e-4)`` in float32 (also under autocast)."""
    return logits.float().softmax(dim=1).clamp(PROB_CLAMP, 1.0 - PROB_CLAMP)


def elr_target_update(targets: Tensor, probs: Tensor, *, beta: float) -> Tensor:
    """One step of the running targets: ``beta * t + (1 - beta) * p / sum(p)``, without gradient.

    Parameters
    ----------
    targets
        (N, C) current targets of the batch samples.
    probs
        (N, C) clamped probabilities of the batch (they sum to slightly more than 1 after clamping,
        hence the renormalisation).
    beta
        Momentum in [0, 1).
    """
    probs = probs.detach().float()
    return beta * targets.float() + (1.0 - beta) * probs / probs.sum(dim=1, keepdim=True)


def elr_penalty(targets: Tensor, probs: Tensor, *, lam: float) -> Tensor:
    """``lam * mean_i log(1 - <t_i, p_i>)`` (gradient flows into ``probs`` only)."""
    inner = (targets.detach().float() * probs).sum(dim=1)
    return lam * torch.log1p(-inner).mean()


class ELRRegularizer(nn.Module):
    """ELR's regularization term with its per-sample targets, to add to any method's loss.

    Parameters
    ----------
    num_train
        Number of training samples (rows of the target table).
    num_classes
        Number of classes.
    beta
        Momentum of the running targets, in [0, 1).
    lam
        Weight of the term (the returned value is already multiplied by it).

    Notes
    -----
    The targets live in this module's own :class:`~noisyfer.methods.SampleState` under ``"target"``,
    so they are saved and restored with the state dict of the method that owns the regularizer.
    In training mode :meth:`forward` first moves the targets of ``indices`` towards the current
    predictions, then returns the penalty against the moved targets; in eval mode it only reads them.

    Examples
    --------
    >>> reg = ELRRegularizer(num_train=4, num_classes=2, beta=0.5, lam=1.0)
    >>> value = reg(torch.zeros(1, 2), torch.tensor([3]))   # p = (0.5, 0.5); t: 0 -> (0.25, 0.25)
    >>> reg.state["target"][3].tolist(), round(float(value), 4)   # log(1 - 0.25)
    ([0.25, 0.25], -0.2877)
    """

    def __init__(self, *, num_train: int, num_classes: int, beta: float = 0.7, lam: float = 3.0):
        super().__init__()
        if num_train < 1 or num_classes < 2:
            raise ValueError(f"ELRRegularizer needs num_train >= 1 and num_classes >= 2, "
                             f"got {num_train}, {num_classes}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.num_classes = int(num_classes)
        self.beta = float(beta)
        self.lam = float(lam)
        self.state = SampleState(num_train)
        self.state.register("target", torch.zeros(num_train, self.num_classes))

    @property
    def targets(self) -> Tensor:
        """(num_train, C) current targets (zeros for samples not seen yet)."""
        return self.state["target"]

    def forward(self, logits: Tensor, indices: Tensor) -> Tensor:
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"ELRRegularizer expects logits (N, {self.num_classes}), got {tuple(logits.shape)}")
        if indices.shape != logits.shape[:1]:
            raise ValueError(f"ELRRegularizer: indices {tuple(indices.shape)} do not match "
                             f"logits {tuple(logits.shape)}")
        probs = elr_probabilities(logits)
        targets = self.state["target"][indices]
        if self.training:
            targets = elr_target_update(targets, probs, beta=self.beta)
            self.state.update("target", indices, targets)
        return elr_penalty(targets, probs, lam=self.lam)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, beta={self.beta}, lam={self.lam}"


def target_agreement(dist: Tensor, labels: Tensor | None) -> Tensor:
    """``dist[i, labels_i]``: the (renormalised) target's mass on the given label; NaN for a sample
    whose target is still empty (never drawn) or when the labels are unknown (before ``setup``)."""
    if labels is None:
        return torch.full(dist.shape[:1], float("nan"), device=dist.device)
    labels = labels.to(dist.device)
    mass = dist.gather(1, labels.view(-1, 1)).squeeze(1)
    return torch.where(dist.sum(1) > 0, mass, torch.full_like(mass, float("nan")))


@dataclass
class ELROptions:
    """Options of the ``elr`` method.

    Attributes
    ----------
    beta
        Momentum of the per-sample targets (ELR's CIFAR-10 value 0.7).
    lam
        Weight of the regularizer (ELR's CIFAR-10 value 3).
    """

    beta: float = 0.7
    lam: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {self.beta}")
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")


@register_method("elr", options=ELROptions)
class ELR(Method):
    """Cross-entropy plus early-learning regularization towards per-sample running targets (ELR).

    Liu et al., NeurIPS 2020, Sec. 4 (the regularized loss and its running-average targets, as in
    their public code); the classification loss of SMEC (paper 001, Eq. 4). Defaults: ELR's CIFAR-10 values
    (beta 0.7, lambda 3), kept for FER's 7-8 classes; SMEC gives no ELR values (its lambda of 2 / 3 / 5
    weighs its consistency term). One view per step (``augment.train``), one linear classifier.
    ``epoch_record`` saves the targets as ``label_dist`` (rows renormalised; unseen samples are 0).
    """

    signal = ("ELR's target agreement t_i[y_i] (Sec. 4): the running target's mass on the given label; low = "
              "the early-learning target disagrees with the label")

    def __init__(self, *, options: ELROptions, **common):
        super().__init__(options=options, **common)
        self.fc = nn.Linear(self.backbone.num_features, self.num_classes)
        self.elr = ELRRegularizer(num_train=self.num_train, num_classes=self.num_classes, beta=options.beta,
                                  lam=options.lam)
        self.given_labels: Tensor | None = None

    def setup(self, info: TrainingSetup) -> None:
        self.given_labels = info.labels

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).features)

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        logits = self(self.augment.train(batch.images))
        ce = F.cross_entropy(logits.float(), batch.labels)
        reg = self.elr(logits, batch.indices)
        return StepOutput(loss=ce + reg, logits=logits, logs={"ce": ce.detach(), "elr": reg.detach()})

    def epoch_record(self) -> dict[str, Tensor]:
        targets = self.elr.targets
        total = targets.sum(dim=1, keepdim=True)
        dist = torch.where(total > 0, targets / total.clamp_min(1e-12), torch.zeros_like(targets))
        return {"label_dist": dist, "clean_score": target_agreement(dist, self.given_labels)}
