"""SMEC: split and merge consistency regularization (Kim et al., IEEE Access 2023).

Per batch, with ``x`` the training view of the images (the paper: random horizontal flip only)::

    tiles   = split(flip(x))                     left and right halves of the mirrored image (Sec. III-A)
    C_org   = cam(x)                             (N, C, h, w), Eq. 1
    C_sm    = resize(merge(cam(tiles)), h, w)    the tiles' CAMs put back side by side (Sec. III-B)
    L_con   = mean (C_org - flip(C_sm))^2        Eq. 5
    L       = CE(fc(x), y) + ELR(fc(x)) + lambda * L_con      Eq. 3, 4, 6

The tiles' forward normalises with the tiles' own batch statistics but leaves the batch-norm running
statistics alone (``bn_statistics=whole``): test time sees whole faces only, so its statistics come
from whole faces only.

lambda: Eq. 4 (ELR's weight) and Eq. 6 (the consistency weight) use the same letter. Sec. IV-B gives
values (2 / 3 / 5 by noise level) only for "the hyperparameter that balances the two losses", Eq. 6's
wording, so by default Eq. 6's lambda takes them and ELR keeps its own paper's value (3, CIFAR-10);
both are 3 at 10-40 % noise, the readings differ only on clean labels and at 50-60 %.
``elr_lambda=shared`` is the literal single-symbol reading (ELR's weight = Eq. 6's lambda).

The mirror and the split commute with the bookkeeping: splitting the mirrored image gives the mirrored
right half first, so merging the tiles' maps in tile order and mirroring the result back lines every
position up with the original image's map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..models import align_mirrored, alignment_shift, cam, check_flip_alignment, running_stats_frozen
from ..registry import register_method
from .base import Batch, Method, StepOutput, TrainingSetup
from .elr import ELRRegularizer, target_agreement

__all__ = ["SMEC", "SMECOptions", "consistency_weight_for_noise", "merge_tiles", "parse_split",
           "split_merge_consistency", "split_tiles"]

#: The paper's consistency weight by noise level (Sec. IV-B): 2 clean, 3 at 10-40 %, 5 at 50-60 %.
PAPER_WEIGHTS = ((0.05, 2.0), (0.45, 3.0), (1.0, 5.0))
DISTANCES = ("mse", "norm")
#: Which forwards update the backbone's batch-norm running statistics (see ``SMECOptions.bn_statistics``).
BN_STATISTICS = ("whole", "all")


def parse_split(split: str) -> tuple[int, int]:
    """``"width"`` -> (1, 2) (left | right), ``"height"`` -> (2, 1) (top / bottom), ``"RxC"`` -> (R, C)."""
    named = {"width": (1, 2), "height": (2, 1)}
    if split in named:
        return named[split]
    match = re.fullmatch(r"(\d+)x(\d+)", str(split))
    if not match or int(match[1]) * int(match[2]) < 2:
        raise ValueError(f"split must be 'width', 'height' or a grid 'RxC' with at least two tiles "
                         f"(e.g. 2x2, 4x4), got {split!r}")
    return int(match[1]), int(match[2])


def consistency_weight_for_noise(noise_level: float) -> float:
    """The paper's lambda for a noise level: 2 (clean), 3 (10-40 %), 5 (50-60 %); levels between the
    tested ones go to the nearer group (below 5 % -> 2, below 45 % -> 3, from 45 % on -> 5)."""
    for below, weight in PAPER_WEIGHTS:
        if noise_level < below:
            return weight
    return PAPER_WEIGHTS[-1][1]


def split_tiles(images: Tensor, rows: int, cols: int) -> Tensor:
    """(N, ch, H, W) -> (N * rows * cols, ch, H / rows, W / cols), tiles of each image in row-major order."""
    n, ch, h, w = images.shape
    if h % rows or w % cols:
        raise ValueError(f"cannot split {h}x{w} images into {rows}x{cols} equal tiles")
    tiles = images.reshape(n, ch, rows, h // rows, cols, w // cols).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(n * rows * cols, ch, h // rows, w // cols)


def merge_tiles(maps: Tensor, rows: int, cols: int, size: tuple[int, int] | None = None) -> Tensor:
    """Inverse of :func:`split_tiles`: (N * rows * cols, k, h, w) -> (N, k, rows * h, cols * w),
    then bilinearly resized to ``size`` (the original map's (h, w)) when that differs."""
    t, k, h, w = maps.shape
    n = t // (rows * cols)
    merged = maps.reshape(n, rows, cols, k, h, w).permute(0, 3, 1, 4, 2, 5).reshape(n, k, rows * h, cols * w)
    if size is not None and tuple(size) != tuple(merged.shape[-2:]):
        merged = F.interpolate(merged, size=tuple(size), mode="bilinear", align_corners=False)
    return merged


def split_merge_consistency(cam_original: Tensor, cam_merged: Tensor, *, distance: str = "mse",
                            shift: int = 0) -> Tensor:
    """Eq. 5 between the original CAM and the mirrored-back merged CAM (both (N, C, h, w)).

    ``mse``: ``mean_{n,c,i,j} (C_org - flip(C_sm))^2``, the squared reading of Eq. 5 (whose
    ``1 / (N c H W)`` is a per-element mean), as EAC's public code computes the identical formula.
    ``norm``: the literal unsquared reading, ``sum_{n,c} ||C_org - flip(C_sm)||_2 / (N c h w)``.
    ``shift`` (:func:`noisyfer.models.cam.flip_shift`): column ``j`` of the mirrored-back map is
    compared with column ``j + shift`` of the original and unpaired columns are left out (0: index
    with index).
    """
    if cam_original.shape != cam_merged.shape:
        raise ValueError(f"CAM shapes differ: {tuple(cam_original.shape)} vs {tuple(cam_merged.shape)}")
    original, mirrored_back = align_mirrored(cam_original.float(), cam_merged.float().flip(-1), shift)
    diff = original - mirrored_back
    if distance == "mse":
        return diff.pow(2).mean()
    return diff.flatten(2).norm(dim=2).sum() / diff.numel()


@dataclass
class SMECOptions:
    """Options of the ``smec`` method.

    Attributes
    ----------
    split
        ``width`` (left and right halves: the paper's method), ``height`` (top and bottom, Table 3)
        or a grid ``RxC``: ``2x2`` and ``4x4`` are Table 2's 4 and 16 pieces.
    consistency_weight
        lambda of Eq. 6. Unset: from ``noise_level``.
    noise_level
        Label-noise rate mapped to the paper's lambda (2 clean, 3 at 10-40 %, 5 at 50-60 %);
        exclusive with ``consistency_weight``. Unset (and no ``consistency_weight``): the fraction
        of training labels the run's noise protocol or noise file changed (0, so lambda 2, when
        the dataset's labels are used as given, the paper's "clean" setting). ``auto``: the noise
        rate estimated by confident learning from ``noise_estimate`` (for a real dataset, whose noise
        level nobody knows); the value used is in the run's ``summary.json`` (``method_resolved``).
    noise_estimate
        With ``noise_level=auto``: the ``.json`` that ``noisyfer suspects`` writes beside its CSV
        (best from ``noisyfer suspects --cv K`` on the same data and labels: out-of-fold estimates;
        its given-labels checksum must match the run's) or an (N, C) ``.npy`` of out-of-sample
        probabilities for the training samples (cleanlab runs on them at set-up).
    elr_beta, elr_lambda
        ELR's target momentum and weight in Eq. 4 (the paper gives none: ELR's CIFAR-10 values).
        ``elr_lambda=shared``: Eq. 4's lambda is Eq. 6's (the literal reading of the shared letter:
        2 clean, 3 at 10-40 %, 5 at 50-60 %); a number: ELR's own weight (default 3, equal to the
        paper's lambda at 10-40 % noise).
    distance
        ``mse`` or ``norm``, the reading of Eq. 5 (see :func:`split_merge_consistency`).
    detach_cam_weights
        Compute CAMs with detached classifier weights, so the consistency trains the backbone only
        (EAC's code, on which SMEC builds; the SMEC paper does not say).
    flip_alignment
        ``grid`` (default): pair the cells of the original and the mirrored-back merged map that
        look at the same pixels (:func:`noisyfer.models.cam.flip_shift`; exact when a tile's width
        is a multiple of the backbone's stride, otherwise the merged map is resized and the
        whole-image shift is used); ``index``: pair equal array indices (EAC's code).
    bn_statistics
        ``whole`` (default): only the whole-image forward updates the batch-norm running statistics;
        the half-image forward normalises with its own batch statistics and leaves the running ones
        alone, so test time (whole faces) uses whole-face statistics. ``all``: both forwards update
        them (before issue 14), so the running statistics mix whole and half faces.
    """

    split: str = "width"
    consistency_weight: float | None = None
    noise_level: float | str | None = None
    noise_estimate: str | None = None
    elr_beta: float = 0.7
    elr_lambda: float | str = 3.0
    distance: str = "mse"
    detach_cam_weights: bool = True
    flip_alignment: str = "grid"
    bn_statistics: str = "whole"

    def __post_init__(self) -> None:
        parse_split(self.split)
        if self.consistency_weight is not None and self.noise_level is not None:
            raise ValueError("give consistency_weight or noise_level, not both")
        if self.consistency_weight is not None and not self.consistency_weight >= 0:
            raise ValueError(f"consistency_weight must be non-negative, got {self.consistency_weight}")
        if isinstance(self.noise_level, str):
            if self.noise_level != "auto":
                raise ValueError(f"noise_level must be a rate in [0, 1) or 'auto', got {self.noise_level!r}")
            if not self.noise_estimate:
                raise ValueError("noise_level=auto needs noise_estimate=PATH: the .json written by noisyfer suspects "
                                 "(e.g. after noisyfer suspects --cv 4 ...) or an (N, C) .npy of probabilities")
        elif self.noise_level is not None and not 0.0 <= self.noise_level < 1.0:
            raise ValueError(f"noise_level must be a rate in [0, 1), got {self.noise_level}")
        if self.noise_estimate and self.noise_level != "auto":
            raise ValueError("noise_estimate is only read with noise_level=auto")
        if not 0.0 <= self.elr_beta < 1.0:
            raise ValueError(f"elr_beta must be in [0, 1), got {self.elr_beta}")
        if isinstance(self.elr_lambda, str):
            if self.elr_lambda != "shared":
                raise ValueError(f"elr_lambda must be a non-negative number or 'shared', got {self.elr_lambda!r}")
        elif not self.elr_lambda >= 0:
            raise ValueError(f"elr_lambda must be non-negative, got {self.elr_lambda}")
        if self.bn_statistics not in BN_STATISTICS:
            raise ValueError(f"bn_statistics must be one of {', '.join(BN_STATISTICS)}, got {self.bn_statistics!r}")
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {self.distance!r}")
        check_flip_alignment(self.flip_alignment)

    def resolved_weight(self, label_noise_rate: float = 0.0, estimated_rate: float | None = None) -> float:
        """lambda of Eq. 6 after the rules above; ``label_noise_rate`` is the run's measured rate,
        ``estimated_rate`` the estimate read for ``noise_level=auto``."""
        if self.consistency_weight is not None:
            return float(self.consistency_weight)
        if self.noise_level == "auto":
            return consistency_weight_for_noise(0.0 if estimated_rate is None else estimated_rate)
        return consistency_weight_for_noise(label_noise_rate if self.noise_level is None else self.noise_level)

    def resolved_elr_lambda(self, consistency_weight: float) -> float:
        """ELR's weight of Eq. 4: ``consistency_weight`` (Eq. 6's lambda) under ``elr_lambda=shared``."""
        return float(consistency_weight if self.elr_lambda == "shared" else self.elr_lambda)


@register_method("smec", options=SMECOptions)
class SMEC(Method):
    """Split and merge consistency: CAMs of the mirrored halves merged and held to the whole CAM (SMEC).

    Kim et al., "Enhancing noisy label FER with split and merge consistency regularization",
    IEEE Access 2023: Eq. 1 (CAMs from the classifier weights), Eq. 3-4 (cross-entropy plus ELR,
    via :class:`~noisyfer.methods.elr.ELRRegularizer`), Eq. 5 (consistency between the original CAM
    and the mirrored-back merged CAM of the split halves) and Eq. 6 (total loss, lambda by noise
    level: 2 / 3 / 5 as in Sec. IV-B). SMEC has no public code; where the paper is silent this
    follows EAC's code (detached classifier weights in the CAMs, squared distance). The tiles'
    CAMs are merged side by side and resized bilinearly to the original CAM's size (a 224 px
    ResNet-18 gives 7x7 for the image but 7x4 per half: merged 7x8, resized to 7x7). The whole
    image and the tiles go through the backbone in two forwards (their sizes differ), so batch-norm
    batch statistics are per forward; only the whole image's updates the running statistics
    (``bn_statistics``). ``epoch_record`` saves ELR's targets as ``label_dist``. Without
    ``consistency_weight`` or ``noise_level``, lambda follows the run's measured label-noise rate
    (set in :meth:`setup`). The mirrored-back merged map is paired with the original by position
    (``flip_alignment=grid``, see :class:`~noisyfer.methods.eac.EAC`): on even-sized inputs index
    reversal compares each cell with its neighbour, at 32 px the face's edge with its centre.
    """

    signal = ("ELR's target agreement t_i[y_i] (SMEC trains with ELR, Eq. 4; its split-merge consistency is a "
              "batch loss, not a per-sample signal)")

    def __init__(self, *, options: SMECOptions, **common):
        super().__init__(options=options, **common)
        self.rows, self.cols = parse_split(options.split)
        if self.image_size % self.rows or self.image_size % self.cols:
            raise UserError(f"method.split={options.split} needs an image side divisible by {self.rows} and "
                            f"{self.cols}; data.image_size is {self.image_size}")
        self.fc = nn.Linear(self.backbone.num_features, self.num_classes)
        self.consistency_weight = options.resolved_weight() if options.noise_level != "auto" else 0.0
        self.elr = ELRRegularizer(num_train=self.num_train, num_classes=self.num_classes, beta=options.elr_beta,
                                  lam=options.resolved_elr_lambda(self.consistency_weight))
        self.given_labels: Tensor | None = None

    def setup(self, info: TrainingSetup) -> None:
        self.given_labels = info.labels
        estimate = None
        if self.options.noise_level == "auto":
            from ..analysis.label_issues import load_noise_rate_estimate

            estimate, source = load_noise_rate_estimate(self.options.noise_estimate, labels=info.labels.cpu().numpy())
            self.resolved.update({"noise_level": round(estimate, 6), "noise_level_source": source})
        self.consistency_weight = self.options.resolved_weight(info.label_noise_rate, estimate)
        self.resolved["consistency_weight"] = self.consistency_weight
        self.elr.lam = self.options.resolved_elr_lambda(self.consistency_weight)
        self.resolved["elr_lambda"] = self.elr.lam

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).features)

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        x = self.augment.train(batch.images)
        out = self.backbone(x)
        logits = self.fc(out.features)
        weight = self.fc.weight.detach() if self.options.detach_cam_weights else self.fc.weight
        cam_original = cam(out.feature_map, weight)
        tiles = split_tiles(self.augment.hflip(x), self.rows, self.cols)
        if self.options.bn_statistics == "whole":
            with running_stats_frozen(self.backbone):
                tile_map = self.backbone(tiles).feature_map
        else:
            tile_map = self.backbone(tiles).feature_map
        cam_tiles = cam(tile_map, weight)
        cam_merged = merge_tiles(cam_tiles, self.rows, self.cols, size=cam_original.shape[-2:])
        shift = alignment_shift(self.options.flip_alignment, x.shape[-1], cam_original.shape[-1],
                                self.backbone.reduction)
        consistency = split_merge_consistency(cam_original, cam_merged, distance=self.options.distance, shift=shift)
        ce = F.cross_entropy(logits.float(), batch.labels)
        elr = self.elr(logits, batch.indices)
        loss = ce + elr + self.consistency_weight * consistency
        return StepOutput(loss=loss, logits=logits,
                          logs={"ce": ce.detach(), "elr": elr.detach(), "consistency": consistency.detach()})

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        return {"consistency_weight": self.consistency_weight, "elr_lambda": self.elr.lam}

    def epoch_record(self) -> dict[str, Tensor]:
        targets = self.elr.targets
        total = targets.sum(dim=1, keepdim=True)
        dist = torch.where(total > 0, targets / total.clamp_min(1e-12), torch.zeros_like(targets))
        return {"label_dist": dist, "clean_score": target_agreement(dist, self.given_labels)}
