"""LDLVA: label distribution learning with valence-arousal neighbourhoods (Le et al., WACV 2023)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..registry import register_method
from .base import Batch, Method, OptimizerSpec, ParamGroup, StepOutput, TrainingSetup
from .label_distribution import (
    aggregate_neighbours,
    center_repulsion,
    default_repulsion_scale,
    soft_cross_entropy,
    target_distribution,
    update_centers,
    weighted_center_loss,
)
from .va_neighbours import local_similarity, nearest_neighbours, training_valence_arousal

NEIGHBOUR_SOURCES = ("memory", "forward")
LAMBDA_PARAMS = ("clamp", "sigmoid")
NORMS = ("layer", "batch")


@dataclass
class LDLVAOptions:
    """Options of the ``ldlva`` method (defaults: the paper; the public code's values in brackets).

    Attributes
    ----------
    num_neighbours
        K, neighbours per training sample in valence-arousal space (8).
    delta
        delta of the local similarity, Eq. 2 (0.5).
    gamma
        Weight of the discriminative loss, Eq. 11 (paper 0.1 [code 0.01]).
    va_columns
        Dataset columns holding valence and arousal: the simulator's ``pseudo_valence``,
        ``pseudo_arousal`` (an estimator's output, as the paper's pseudo VA), or ``valence``,
        ``arousal`` (true VA: the simulator's, or AffectNet's annotations). The simulator's pseudo VA
        has the published concordance of the estimator the paper used (EmoNet on AffectNet: valence
        CCC 0.82, arousal 0.75); ``data.pseudo_va_error=legacy`` gives the noisier level before issue 14.
    va_file
        A ``.npy`` (N, 2) or ``.csv`` (header ``valence,arousal`` [``,index``]) file of valence-arousal
        per training sample, instead of the columns.
    neighbours
        Where the neighbours' predictions and features come from: ``memory`` (a per-sample bank
        refreshed whenever a sample is in a batch; noisyfer's default, see the class docstring) or
        ``forward`` (forward the K neighbour images with every batch [code], about (K+1)x the cost).
    lambda_param
        How the uncertainty factor lambda_i in [0, 1] is trained: ``clamp`` (lambda_i itself,
        projected onto [0, 1] before each step: the paper's description) or ``sigmoid``
        (lambda_i = sigmoid(u_i) [code]).
    lambda_init
        Initial lambda_i (paper 0 [code 0.3775, i.e. weight sigmoid(0.5) on the label]); in (0, 1)
        for ``sigmoid``.
    lambda_lr
        Learning rate of the uncertainty factors: their own SGD without momentum or weight decay
        (paper silent [code 10]); scaled by the run's schedule like every group.
    learn_lambda
        Train one lambda_i per sample (paper); ``false`` keeps lambda_init for all (ablation UF).
    calibration
        Use the adaptive calibration MLP (Eq. 3-4); ``false`` uses the local similarity alone
        (ablation AS).
    calibration_dims
        Hidden widths of the calibration MLP before its output unit (512, 256).
    calibration_norm
        ``layer`` (paper) or ``batch`` [code] normalisation in its hidden layers.
    calibration_min_logit
        Floor of the MLP's output logit before the sigmoid (none [code -1.3]).
    center_lr
        alpha of the centres' update rule of Wen et al. 2016, which the paper follows (0.5).
    repulsion_scale
        Denominator in the centre repulsion of Eq. 10 (none = sqrt(feature dimension), the paper's).
    """

    num_neighbours: int = 8
    delta: float = 0.5
    gamma: float = 0.1
    va_columns: list = field(default_factory=lambda: ["pseudo_valence", "pseudo_arousal"])
    va_file: str | None = None
    neighbours: str = "memory"
    lambda_param: str = "clamp"
    lambda_init: float = 0.0
    lambda_lr: float = 10.0
    learn_lambda: bool = True
    calibration: bool = True
    calibration_dims: list = field(default_factory=lambda: [512, 256])
    calibration_norm: str = "layer"
    calibration_min_logit: float | None = None
    center_lr: float = 0.5
    repulsion_scale: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.num_neighbours, bool) or not isinstance(self.num_neighbours, int) or self.num_neighbours < 1:
            raise ValueError(f"num_neighbours must be a positive integer, got {self.num_neighbours!r}")
        for name in ("delta", "lambda_lr", "center_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be non-negative, got {self.gamma}")
        if len(self.va_columns) != 2 or not all(isinstance(c, str) and c for c in self.va_columns):
            raise ValueError(f"va_columns must name two columns (valence, arousal), got {self.va_columns!r}")
        for name, allowed in (("neighbours", NEIGHBOUR_SOURCES), ("lambda_param", LAMBDA_PARAMS),
                              ("calibration_norm", NORMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.lambda_param == "sigmoid" and not 0.0 < self.lambda_init < 1.0:
            raise ValueError(f"lambda_init must be in (0, 1) with lambda_param=sigmoid, got {self.lambda_init}")
        if not 0.0 <= self.lambda_init <= 1.0:
            raise ValueError(f"lambda_init must be in [0, 1], got {self.lambda_init}")
        if not self.calibration_dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                                            for d in self.calibration_dims):
            raise ValueError(f"calibration_dims must be positive integers, got {self.calibration_dims!r}")
        if self.repulsion_scale is not None and not self.repulsion_scale > 0:
            raise ValueError(f"repulsion_scale must be positive, got {self.repulsion_scale}")


class CalibrationNet(nn.Module):
    """Eq. 3: ``zeta = sigmoid(g([v_i, v_k]))``, g an MLP (2D -> 512 -> 256 -> 1, norm and ReLU)."""

    def __init__(self, feature_dim: int, hidden: list[int], *, norm: str = "layer", min_logit: float | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        width = 2 * feature_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size) if norm == "layer" else nn.BatchNorm1d(size),
                       nn.ReLU(inplace=True)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.min_logit = min_logit

    def forward(self, main: Tensor, neighbours: Tensor) -> Tensor:
        """``main`` (B, D), ``neighbours`` (B, K, D) -> calibration scores (B, K) in (0, 1)."""
        b, k, d = neighbours.shape
        pairs = torch.cat([main.unsqueeze(1).expand(b, k, d), neighbours.to(main.dtype)], dim=2)
        logits = self.mlp(pairs.reshape(b * k, 2 * d)).reshape(b, k)
        if self.min_logit is not None:
            logits = logits.clamp_min(self.min_logit)
        return torch.sigmoid(logits)


@register_method("ldlva", options=LDLVAOptions)
class LDLVA(Method):
    """Label distributions from valence-arousal neighbours, with per-sample uncertainty (LDLVA).

    Le et al., "Uncertainty-aware label distribution learning for facial expression recognition",
    WACV 2023. Implements Eq. 1 (soft cross-entropy against the constructed distribution), Eq. 2
    (local similarity of the K nearest neighbours in valence-arousal space, found once in
    ``setup``), Eq. 3-4 (calibration MLP on feature pairs times similarity), Eq. 5-6 (target
    ``d_i = (1 - lambda_i) l_i + lambda_i d~_i``), Eq. 7-9 (lambda_i trained by the classification
    loss alone; the centre term sees it detached) and Eq. 10-11 (uncertainty-weighted centre loss and
    centre repulsion, weight gamma). The centres are buffers updated by Wen et al.'s rule (alpha
    ``center_lr``) and a repulsion step, as the paper "follows [55]".

    Paper vs public code (paper default, code as option): gamma 0.1 vs 0.01; lambda_i in [0, 1]
    initialised to 0 vs sigmoid of a scalar with lambda 0.38 at start (``lambda_param=sigmoid
    lambda_init=0.3775``); LayerNorm vs BatchNorm in the MLP, no floor vs logit floor -1.3. Where
    the paper is silent the code's choice is the default: lambda's own SGD with lr 10, neighbour
    predictions and features carry no gradient. The code also pulls the neighbours' features
    to their centres and divides the centre update by the batch size; here only the batch samples
    are pulled, by Wen et al.'s rule.

    Neighbours (noisyfer's deviation, measured by ``benchmarks/bench_ldlva.py``): the public code
    forwards the K neighbour images with every batch (``neighbours=forward`` does that through
    ``TrainingSetup.fetch``). The default ``neighbours=memory`` reads the neighbours' softmax and
    features from a per-sample bank written whenever a sample is in a batch (training view, training
    mode, as the code's neighbour forward). Before a neighbour was first seen its bank row is the
    uniform distribution with a ``bank_filled`` flag off; unfilled neighbours get contribution 0,
    and a sample with no filled neighbour (or zero similarity to all) is trained on its label alone
    (lambda then gets no gradient). ``epoch_record`` exports each sample's last target ``label_dist``
    (one-hot of the given label before its first visit) and ``lambda``.
    """

    signal = "LDLVA's 1 - lambda_i (Eq. 5-6): lambda_i is the learned weight of the neighbours' distribution over the given label"

    columns = ()

    def __init__(self, *, options: LDLVAOptions, **common):
        super().__init__(options=options, **common)
        opts = options
        d, n, c, k = self.backbone.num_features, self.num_train, self.num_classes, opts.num_neighbours
        self.fc = nn.Linear(d, c)
        self.calibration = CalibrationNet(d, list(opts.calibration_dims), norm=opts.calibration_norm,
                                          min_logit=opts.calibration_min_logit) if opts.calibration else None
        if opts.lambda_param == "sigmoid":
            raw = math.log(opts.lambda_init / (1.0 - opts.lambda_init))
        else:
            raw = opts.lambda_init
        self.lambda_raw = nn.Parameter(torch.full((n,), float(raw)), requires_grad=opts.learn_lambda)
        self.register_buffer("centers", torch.zeros(c, d))
        self.repulsion_scale = opts.repulsion_scale or default_repulsion_scale(d)
        # Derived from the data in setup() (recomputed on resume), so not saved with the weights.
        self.register_buffer("neighbours", torch.zeros(n, k, dtype=torch.long), persistent=False)
        self.register_buffer("similarity", torch.zeros(n, k), persistent=False)
        self.state.register("bank_probs", torch.full((n, c), 1.0 / c))
        self.state.register("bank_features", torch.zeros(n, d))
        self.state.register("bank_filled", torch.zeros(n, dtype=torch.bool))
        self.state.register("target", torch.zeros(n, c))
        self._fetch = None

    # -- set-up -----------------------------------------------------------------------------
    def setup(self, info: TrainingSetup) -> None:
        opts = self.options
        va = training_valence_arousal(num_samples=self.num_train, columns=info.columns,
                                      column_names=opts.va_columns, file=opts.va_file)
        neighbours = nearest_neighbours(va, opts.num_neighbours)
        device = self.centers.device
        self.neighbours = torch.from_numpy(neighbours).to(device)
        self.similarity = torch.from_numpy(local_similarity(va, neighbours, opts.delta)).to(device)
        if opts.neighbours == "forward" and info.fetch is None:
            raise UserError("method.neighbours=forward needs the engine's fetch() of training samples; "
                            "this caller gave none (use neighbours=memory)")
        self._fetch = info.fetch
        labels = torch.as_tensor(info.labels, dtype=torch.long)
        self.state.update("target", torch.arange(self.num_train), F.one_hot(labels, self.num_classes).float())

    def param_groups(self) -> list[ParamGroup]:
        main = [p for name, p in self.named_parameters() if name != "lambda_raw" and p.requires_grad]
        groups = [ParamGroup(main)]
        if self.lambda_raw.requires_grad:
            groups.append(ParamGroup([self.lambda_raw], lr=self.options.lambda_lr, weight_decay=0.0,
                                     optimizer=OptimizerSpec("sgd", {"momentum": 0.0, "nesterov": False})))
        return groups

    # -- the model ----------------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).features)

    def lambdas(self, indices: Tensor | None = None) -> Tensor:
        """Uncertainty factors lambda_i in [0, 1] of ``indices`` (all samples if ``None``)."""
        raw = self.lambda_raw if indices is None else self.lambda_raw[indices]
        if self.options.lambda_param == "sigmoid":
            return torch.sigmoid(raw)
        # The raw values are projected onto [0, 1] before each step; the clamp only guards readers
        # after the last step (its gradient passes at the bounds themselves).
        return raw.clamp(0.0, 1.0)

    @torch.no_grad()
    def _forward_neighbours(self, neighbours: Tensor) -> tuple[Tensor, Tensor]:
        """Softmax (B, K, C) and features (B, K, D) of the neighbours' training views (code's way)."""
        b, k = neighbours.shape
        images = self._fetch(neighbours.reshape(-1).cpu()).images
        features = self.backbone(self.augment.train(images)).features
        probs = self.fc(features).float().softmax(1)
        return probs.reshape(b, k, -1), features.reshape(b, k, -1)

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        opts = self.options
        idx = batch.indices
        if opts.lambda_param == "clamp" and self.lambda_raw.requires_grad:
            with torch.no_grad():  # projected gradient descent: lambda_i stays in [0, 1]
                self.lambda_raw.clamp_(0.0, 1.0)
        neighbours = self.neighbours[idx]
        if opts.neighbours == "forward":
            nb_probs, nb_features = self._forward_neighbours(neighbours)
            available = torch.ones_like(neighbours, dtype=torch.bool)
        else:
            nb_probs = self.state["bank_probs"][neighbours]
            nb_features = self.state["bank_features"][neighbours]
            available = self.state["bank_filled"][neighbours]

        features = self.backbone(self.augment.train(batch.images)).features
        logits = self.fc(features)
        if self.calibration is not None:
            calibration = self.calibration(features, nb_features)
        else:
            calibration = torch.ones_like(self.similarity[idx])
        contributions = calibration.float() * self.similarity[idx] * available
        aggregated, has_neighbours = aggregate_neighbours(nb_probs, contributions)
        lam = self.lambdas(idx)
        one_hot = F.one_hot(batch.labels, self.num_classes).float()
        target = target_distribution(one_hot, aggregated, lam, has_neighbours)
        cls_loss = soft_cross_entropy(logits, target).mean()
        weights = (1.0 - lam).detach()
        center_loss = weighted_center_loss(features, self.centers, batch.labels, weights).mean()
        repulsion = center_repulsion(self.centers, self.repulsion_scale)
        loss = cls_loss + opts.gamma * (center_loss + repulsion)

        self.state.update("bank_probs", idx, logits.detach().float().softmax(1))
        self.state.update("bank_features", idx, features.detach())
        self.state.update("bank_filled", idx, torch.ones_like(idx, dtype=torch.bool))
        self.state.update("target", idx, target.detach())
        if opts.gamma:
            self.centers.copy_(update_centers(self.centers, features.detach(), batch.labels, weights,
                                              lr=opts.center_lr, repulsion_weight=opts.gamma,
                                              scale=self.repulsion_scale))
        has = has_neighbours.float()
        logs = {
            "cls_loss": cls_loss.detach(),
            "center_loss": center_loss.detach(),
            "repulsion": repulsion.detach(),
            "lambda": lam.detach().float().mean(),
            "neighbour_coverage": has.mean(),
            "calibration": (calibration.detach().float() * available).sum() / available.sum().clamp_min(1),
            "target_label_mass": (target.detach() * one_hot).sum(1).mean(),
        }
        return StepOutput(loss=loss, logits=logits, logs=logs)

    # -- records ----------------------------------------------------------------------------
    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        lam = self.lambdas().detach()
        return {"lambda_mean": float(lam.mean()), "lambda_above_half": float((lam > 0.5).float().mean()),
                "bank_filled": float(self.state["bank_filled"].float().mean())}

    def epoch_record(self) -> dict[str, Tensor]:
        lam = self.lambdas().detach().clone()
        return {"label_dist": self.state["target"].detach().clone(), "lambda": lam, "clean_score": 1.0 - lam}
