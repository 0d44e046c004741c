"""Erasing Attention Consistency (EAC): flip-consistent class activation maps under random erasing.

Zhang, Wang, Ling and Deng, "Learn From All: Erasing Attention Consistency for Noisy Label Facial
Expression Recognition", ECCV 2022 (a baseline of SMEC, paper 001). A network that memorises a noisy
label does so from a small part of the face; erasing a random patch and asking the class activation
maps (CAMs) of an image and of its mirror image to agree (after flipping one back) keeps it looking
at the whole face, which the noisy label cannot explain.

Per batch: view 1 = image (+ Gaussian noise) with its own random erasing; view 2 = the mirrored image
with its own, independent erasing. With ``M = cam(feature_map, W.detach())`` (every class's
classifier weights at every layer4 position, without bias)::

    L = CE(fc(f_1), y) + lam * mean_{n,c,i,j} (M_1[n,c,i,j] - flip(M_2)[n,c,i,j])^2

The cross-entropy sees view 1 only; the CAMs use the *detached* classifier weights, so the
consistency term trains the backbone and never the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.augment import gaussian_noise, hflip, random_rotation, to_float
from ..models import cam
from ..registry import register_method
from .base import Batch, Method, StepOutput

__all__ = ["EAC", "EACOptions", "flip_attention_consistency"]


def flip_attention_consistency(cam_original: Tensor, cam_flipped: Tensor) -> Tensor:
    """``mean((cam_original - flip(cam_flipped))^2)`` over batch, classes and positions.

    Parameters
    ----------
    cam_original
        (N, C, h, w) CAMs of view 1.
    cam_flipped
        (N, C, h, w) CAMs of the mirrored view 2; mirrored back along the width before comparing
        (EAC's grid-sample flip with ``align_corners=True`` is exactly this index reversal).
    """
    if cam_original.shape != cam_flipped.shape:
        raise ValueError(f"CAM shapes differ: {tuple(cam_original.shape)} vs {tuple(cam_flipped.shape)}")
    return F.mse_loss(cam_original.float(), cam_flipped.float().flip(-1))


@dataclass
class EACOptions:
    """Options of the ``eac`` method.

    Attributes
    ----------
    lam
        Weight of the flip attention consistency (EAC's default 5).
    """

    lam: float = 5.0

    def __post_init__(self) -> None:
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")


@register_method("eac", options=EACOptions)
class EAC(Method):
    """Erasing attention consistency: CE on an erased view plus flip-consistent CAMs (EAC, ECCV 2022).

    Zhang et al. 2022, method section: CAMs from the classifier weights, the flip attention
    consistency (MSE between the CAM of an image and the flipped-back CAM of its mirror) and the total
    loss ``L = L_cls + lam * L_flip``; lam 5 as in the public code (its ``--lam`` default).

    Views (``augment.*``): one geometric draw (crop, flip, rotation) is shared, so that view 2 is
    exactly the mirror of view 1 before their independent erasing; Gaussian noise
    (``augment.noise``) goes into view 1 only, as in the public code, where the mirrored view is made
    from the raw image. The public code uses no crop or random flip (``eac_paper.yaml`` turns them off).
    Both views go through the backbone in one forward (one batch of 2N), so batch-norm statistics are
    taken over both views together; the public code forwards them separately.
    """

    def __init__(self, *, options: EACOptions, **common):
        super().__init__(options=options, **common)
        self.fc = nn.Linear(self.backbone.num_features, self.num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).features)

    def views(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(view 1, mirrored view 2), both normalised and independently erased."""
        cfg = self.augment.config
        base = self.augment.geometric(images)
        if cfg.rotation > 0 or cfg.noise > 0:
            base = random_rotation(to_float(base), cfg.rotation)
        first = self.augment.erase(self.augment.normalize(gaussian_noise(base, cfg.noise, cfg.noise_std)))
        second = self.augment.erase(self.augment.normalize(hflip(base)))
        return first, second

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        first, second = self.views(batch.images)
        out = self.backbone(torch.cat([first, second]))
        n = len(batch)
        logits = self.fc(out.features[:n])
        maps = cam(out.feature_map, self.fc.weight.detach())
        consistency = flip_attention_consistency(maps[:n], maps[n:])
        ce = F.cross_entropy(logits.float(), batch.labels)
        loss = ce + self.options.lam * consistency
        return StepOutput(loss=loss, logits=logits, logs={"ce": ce.detach(), "consistency": consistency.detach()})
