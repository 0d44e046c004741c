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
from ..models import align_mirrored, alignment_shift, cam, check_flip_alignment
from ..registry import register_method
from .base import Batch, Method, StepOutput

__all__ = ["EAC", "EACOptions", "flip_attention_consistency"]


def flip_attention_consistency(cam_original: Tensor, cam_flipped: Tensor, *, shift: int = 0) -> Tensor:
    """``mean((cam_original - flip(cam_flipped))^2)`` over batch, classes and the paired positions.

    Parameters
    ----------
    cam_original
        (N, C, h, w) CAMs of view 1.
    cam_flipped
        (N, C, h, w) CAMs of the mirrored view 2; mirrored back along the width before comparing
        (EAC's grid-sample flip with ``align_corners=True`` is exactly this index reversal).
    shift
        Cells between the two maps' grids (:func:`noisyfer.models.cam.flip_shift`): column ``j`` of
        the mirrored-back map is compared with column ``j + shift`` of the original, the unpaired
        columns are left out. 0 compares index with index, as EAC's public code.
    """
    if cam_original.shape != cam_flipped.shape:
        raise ValueError(f"CAM shapes differ: {tuple(cam_original.shape)} vs {tuple(cam_flipped.shape)}")
    original, mirrored_back = align_mirrored(cam_original.float(), cam_flipped.float().flip(-1), shift)
    return F.mse_loss(original, mirrored_back)


@dataclass
class EACOptions:
    """Options of the ``eac`` method.

    Attributes
    ----------
    lam
        Weight of the flip attention consistency (EAC's default 5).
    flip_alignment
        ``grid`` (default): compare the cells of the two maps that look at the same pixels of the
        face (:func:`noisyfer.models.cam.flip_shift`); ``index``: compare equal array indices, as
        EAC's public code, which on an even-sized input pairs each cell with its neighbour.
    """

    lam: float = 5.0
    flip_alignment: str = "grid"

    def __post_init__(self) -> None:
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")
        check_flip_alignment(self.flip_alignment)


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

    Flip alignment (deviation from the public code, ``flip_alignment=grid``): mirroring a map back by
    index reversal pairs cells that look at different pixels whenever the stride-2 grid is not
    mirror-symmetric (any even input side: at 224 px with ResNet-18 the mirrored-back cell j sits over
    the original's cell j + 1; at 32 px with the 2x2 map of ``resnet_small``, it compares the face's
    edge with its centre). The paper's consistency is between the same facial locations, so by
    default the cells are paired by position and the unpaired column is left out;
    ``flip_alignment=index`` reproduces the code.
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
        shift = alignment_shift(self.options.flip_alignment, first.shape[-1], maps.shape[-1],
                                self.backbone.reduction)
        consistency = flip_attention_consistency(maps[:n], maps[n:], shift=shift)
        ce = F.cross_entropy(logits.float(), batch.labels)
        loss = ce + self.options.lam * consistency
        return StepOutput(loss=loss, logits=logits, logs={"ce": ce.detach(), "consistency": consistency.detach()})
