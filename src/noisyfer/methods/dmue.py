"""DMUE: latent distribution mining with auxiliary branches and pairwise uncertainty estimation.

She et al., "Dive into Ambiguity: Latent Distribution Mining and Pairwise Uncertainty Estimation
for Facial Expression Recognition", CVPR 2021. The loss terms are the pure functions of
:mod:`noisyfer.methods.dmue_losses`; the branches are :mod:`noisyfer.methods.dmue_branches`.

Network: the backbone up to ``layer3`` is shared; the backbone's ``layer4`` is the main branch and K
deep copies of it are the auxiliary branches (one per class). Every branch: global average pooling
-> dropout -> BN neck (no bias) -> linear classifier without bias (K outputs for the main branch,
K-1 for auxiliary branch c, which never sees class c). Inference uses the main branch only.

Per batch (labels y, e = completed epochs, a = ``ramp_epoch``)::

    L = r_up(e) * CE(s * z_main, y) + r_up(e) * (w * L_soft + gamma * L_sp) + r_down(e) * L_aux

gamma (1000 in the public code) was set for RAF-DB, where about 1,700 steps pass before the ramp
ends; by default it is scaled by the run's ramp steps (``sp_weight_scaling=steps``: the paper's
value on RAF-DB and larger, 7.8 for 150 ramp steps). A main branch whose cross-entropy stays at
chance (ln K) for two epochs after the ramp stops the run with a message (``collapse_check``).

with ``s = sigmoid(MLP([class_similarity, onehot(y)]))`` the pairwise-uncertainty score of each
sample, L_soft pulling the main branch's non-target probabilities to the latent distribution mined
by branch y (sharpened with T), L_sp preserving the sample similarities of each auxiliary branch in
the main branch, and L_aux the auxiliary branches' own cross-entropy.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..registry import register_method
from .base import Batch, Method, ParamGroup, StepOutput, TrainingSetup
from .dmue_branches import BRANCH_FORWARDS, BranchNecks, BranchStages
from .dmue_losses import (
    auxiliary_ce,
    auxiliary_targets,
    class_similarity,
    has_enough_per_class,
    latent_distribution,
    main_branch_dead,
    ramp_down,
    ramp_up,
    soft_loss,
    sp_loss,
    sp_weight_for_steps,
)

__all__ = ["DMUE", "DMUEOptions", "DMUEOutputs"]


@dataclass
class DMUEOptions:
    """Options of the ``dmue`` method (defaults: DMUE's public code for RAF-DB).

    Attributes
    ----------
    temperature
        T of the latent-distribution sharpening ``p^(1/T)`` (1.2).
    soft_weight
        w, weight of L_soft (0.5).
    sp_weight
        gamma, weight of L_sp at RAF-DB's length (1000, the public code).
    sp_weight_scaling
        ``steps`` (default): the weight used is
        ``sp_weight * min(1, ramp_steps / sp_reference_steps) ** sp_steps_power`` with
        ``ramp_steps = ramp_epoch * steps_per_epoch``, so that it is the paper's on RAF-DB (170 steps
        per epoch at batch 72, ramp epoch 10: 1,700 steps) and larger datasets, and smaller where the
        auxiliary branches have fewer steps to learn before L_sp reaches full weight (at 1000 on
        1,000 faces, 150 ramp steps, the main branch never leaves chance; 7.8 there). ``none``:
        always ``sp_weight``. The value used is in ``summary.json`` (``method_resolved.sp_weight``).
    sp_steps_power
        Exponent of the step ratio (2: 150 ramp steps give 7.8, next to the weight 10 measured to
        train on the benchmark; 1 gives 88, where L_sp's gradient on the trunk is still 80x CE's).
    sp_reference_steps
        Ramp steps at which ``sp_weight`` holds (1,700: RAF-DB's 12,271 faces // 72 x 10 epochs).
    collapse_check
        Stop with an error naming what to change when the main branch's mean cross-entropy stays at
        chance (at least 0.97 ln K) for two consecutive epochs at full ramp weight. False trains on.
    ramp_epoch
        a of the ramps: about 10 for RAF-DB (the default), 6 for AffectNet, 10-14 for FERPlus.
    dropout
        Dropout before every BN neck (0.5).
    train_uncertainty
        Train the pairwise-uncertainty MLP (the paper). False freezes it at its random
        initialisation, which is what the public code does in effect (it never gives the MLP to the
        optimizer). While most predictions are still wrong, ``CE(s z)`` is lowest at ``s = 0`` and a
        trained MLP can push every score towards 0, stalling the main branch's CE (seen training
        from scratch on the simulator: mean score 0.51 -> 0.02 in 8 epochs).
    sp_detach_aux
        Detach the auxiliary logits in L_sp, so that it moves only the main branch (distillation
        from the auxiliary branches, as in the similarity-preserving KD it comes from). False (the
        public code) lets L_sp move the auxiliary branches as well.
    head_lr_ratio
        Learning rate of the heads (classifiers, BN necks, uncertainty MLP) relative to
        ``train.lr`` (the public code starts the classifiers at 10x the backbone's rate).
    branch_forward
        ``"loop"`` or ``"batched"``: how the K+1 last stages run (same numbers; see
        :mod:`noisyfer.methods.dmue_branches`).
    """

    temperature: float = 1.2
    soft_weight: float = 0.5
    sp_weight: float = 1000.0
    sp_weight_scaling: str = "steps"
    sp_reference_steps: int = 1700
    sp_steps_power: float = 2.0
    collapse_check: bool = True
    ramp_epoch: float = 10.0
    dropout: float = 0.5
    train_uncertainty: bool = True
    sp_detach_aux: bool = False
    head_lr_ratio: float = 10.0
    branch_forward: str = "loop"

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in ("soft_weight", "sp_weight", "ramp_epoch"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.head_lr_ratio <= 0:
            raise ValueError(f"head_lr_ratio must be > 0, got {self.head_lr_ratio}")
        if self.sp_weight_scaling not in ("steps", "none"):
            raise ValueError(f"sp_weight_scaling must be 'steps' or 'none', got {self.sp_weight_scaling!r}")
        if not self.sp_steps_power > 0:
            raise ValueError(f"sp_steps_power must be > 0, got {self.sp_steps_power}")
        if self.sp_reference_steps < 1:
            raise ValueError(f"sp_reference_steps must be >= 1, got {self.sp_reference_steps}")
        if self.branch_forward not in BRANCH_FORWARDS:
            raise ValueError(f"branch_forward must be one of {', '.join(BRANCH_FORWARDS)}, got {self.branch_forward!r}")


@dataclass
class DMUEOutputs:
    """What one training forward of all branches gives (branch index K is the main branch).

    Attributes
    ----------
    pooled
        (K+1, N, D) pooled last-stage features, before dropout.
    necked
        (K+1, N, D) classifier inputs (after dropout and the BN necks).
    main_logits
        (N, K) main-branch logits (before the uncertainty score).
    aux_logits
        (K, N, K-1) auxiliary logits of every branch for every sample.
    """

    pooled: Tensor
    necked: Tensor
    main_logits: Tensor
    aux_logits: Tensor


@register_method("dmue", options=DMUEOptions)
class DMUE(Method):
    """Latent distribution mining with K auxiliary branches and pairwise uncertainty (DMUE, CVPR 2021).

    She et al. 2021 (method section: auxiliary branches and the latent distribution with L_soft,
    pairwise uncertainty from the batch similarities, L_sp and the ramped total loss). Defaults
    follow DMUE's public code for RAF-DB (T 1.2, w 0.5, gamma 1000, a 10, heads at 10x the lr),
    except: the uncertainty MLP is trained (the paper; the code never optimises it:
    ``method.train_uncertainty=false``), the BN neck is one per branch (the code shares one, which
    mixes the auxiliary features into the main branch's test-time statistics) and its weight trains
    (the code leaves the neck out of its optimizer).

    Every branch sees the whole batch in one forward; the auxiliary losses use the samples not
    labelled c and the latent distributions use the samples labelled c, from that same forward (the
    code forwards the two subsets separately, so its batch-norm statistics are per subset). The
    latent distributions are computed without dropout and without updating the running statistics.
    A batch without two samples of every class is skipped (``StepOutput(loss=None)``), decided from
    ``Batch.host_labels`` (no device synchronisation). Use ``train.sampler=balanced`` as the paper.
    ``epoch_record``: ``clean_score`` = last uncertainty score s_i, ``latent_dist`` = last mined
    latent distribution (0 at the label).
    """

    #: Registered name, for messages.
    method_name = "dmue"
    signal = ("DMUE's uncertainty score s_i (from the batch's class similarities and the label): low where "
              "the mined latent label distribution disagrees with the label")

    def __init__(self, *, options: DMUEOptions, **common):
        super().__init__(options=options, **common)
        if self.num_classes < 3:
            raise ValueError(f"DMUE needs at least 3 classes (auxiliary branches have K-1 outputs), "
                             f"got {self.num_classes}")
        k, dim = self.num_classes, self.backbone.num_features
        self.branches = BranchStages(self.backbone.layer4, k, mode=options.branch_forward)
        self.necks = BranchNecks(k + 1, dim)
        self.fc = nn.Linear(dim, k, bias=False)
        self.aux_weight = nn.Parameter(torch.empty(k, k - 1, dim))
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.normal_(self.aux_weight, std=0.001)
        self.uncertainty = nn.Sequential(nn.Linear(2 * k, k), nn.PReLU(), nn.Linear(k, 1))
        if not options.train_uncertainty:
            self.uncertainty.requires_grad_(False)
        self.state.register("clean_score", torch.ones(self.num_train))
        self.state.register("latent_dist", torch.zeros(self.num_train, k))
        self._steps = {"trained": 0, "skipped": 0}
        #: L_sp's weight in use: ``sp_weight`` until :meth:`setup` knows the run's steps per epoch.
        self.sp_weight = float(options.sp_weight)
        self._ce_sum: Tensor | float = 0.0
        self._dead_epochs: list[int] = []

    # -- the 2-samples-per-class rule -------------------------------------------------------------
    def setup(self, info: TrainingSetup) -> None:
        counts = torch.bincount(info.labels.cpu(), minlength=self.num_classes).tolist()
        rare = [f"{info.class_names[c]} ({n})" for c, n in enumerate(counts) if n < 2]
        if rare:
            raise UserError(f"dmue skips every batch without two samples of each class, and these classes have "
                            f"fewer than 2 training samples: {', '.join(rare)}")
        opts = self.options
        if opts.sp_weight_scaling == "steps" and opts.ramp_epoch > 0:
            ramp_steps = round(opts.ramp_epoch * info.steps_per_epoch)
            self.sp_weight = sp_weight_for_steps(opts.sp_weight, ramp_steps, opts.sp_reference_steps,
                                                 power=opts.sp_steps_power)
            self.resolved["ramp_steps"] = ramp_steps
        self.resolved["sp_weight"] = round(self.sp_weight, 6)

    def on_epoch_start(self, epoch: int) -> None:
        self._steps = {"trained": 0, "skipped": 0}
        self._ce_sum = 0.0

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        trained, skipped = self._steps["trained"], self._steps["skipped"]
        hint = "use train.sampler=balanced (as DMUE does) or a larger train.batch_size"
        if skipped and not trained:
            raise UserError(f"dmue: all {skipped} batches of epoch {epoch} lacked two samples of some class; {hint}")
        if skipped > trained:
            warnings.warn(f"dmue skipped {skipped} of {skipped + trained} batches in epoch {epoch} (fewer than two "
                          f"samples of some class); {hint}", stacklevel=2)
        if not trained:
            return {}
        mean_ce = float(self._ce_sum) / trained  # one device read per epoch
        self._check_collapse(epoch, mean_ce)
        return {"ce_main_epoch": mean_ce}

    def _check_collapse(self, epoch: int, mean_ce: float) -> None:
        """Count epochs at full ramp weight whose main cross-entropy is at chance; two in a row stop the run."""
        opts = self.options
        full_weight = ramp_up(epoch - 1, opts.ramp_epoch) == 1.0
        if not (opts.collapse_check and full_weight and main_branch_dead(mean_ce, self.num_classes)):
            self._dead_epochs = []
            return
        self._dead_epochs.append(epoch)
        if len(self._dead_epochs) >= 2:
            raise UserError(
                f"{self.method_name}: the main branch collapsed: its mean cross-entropy was {mean_ce:.3f} in epoch {epoch} "
                f"(chance: ln {self.num_classes} = {math.log(self.num_classes):.3f}) for "
                f"{len(self._dead_epochs)} epochs after the ramp (L_sp weight {self.sp_weight:g}). Lower "
                f"method.sp_weight (e.g. 10), keep method.sp_weight_scaling=steps, or lower train.lr; "
                f"method.collapse_check=false trains on regardless")

    # -- inference: the main branch only ------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        trunk = self.backbone.forward_until(images, "layer3")
        pooled = self.backbone.pool(self.backbone.layer4(trunk))
        k = self.num_classes
        necked = self.necks(F.dropout(pooled, self.options.dropout, self.training).unsqueeze(0),
                            branches=slice(k, k + 1))[0]
        return self.fc(necked)

    # -- training -------------------------------------------------------------------------------
    def forward_branches(self, images: Tensor) -> DMUEOutputs:
        """All K+1 branches on normalised ``images`` (training view)."""
        k = self.num_classes
        pooled = self.branches(self.backbone.forward_until(images, "layer3"), self.backbone.layer4)
        necked = self.necks(F.dropout(pooled, self.options.dropout, self.training))
        main_logits = self.fc(necked[k])
        aux_logits = torch.einsum("cnd,cjd->cnj", necked[:k], self.aux_weight)
        return DMUEOutputs(pooled=pooled, necked=necked, main_logits=main_logits, aux_logits=aux_logits)

    @torch.no_grad()
    def mined_distribution(self, pooled: Tensor, labels: Tensor) -> Tensor:
        """(N, K) latent distribution of each sample from its own label's auxiliary branch, on the
        pooled features without dropout and without touching the necks' running statistics."""
        k = self.num_classes
        necked = self.necks(pooled[:k].detach(), branches=slice(0, k), track=False)
        logits = torch.einsum("cnd,cjd->cnj", necked, self.aux_weight)
        own = logits[labels, torch.arange(labels.shape[0], device=labels.device)]
        return latent_distribution(own, labels, self.options.temperature)

    def uncertainty_score(self, main_pooled: Tensor, labels: Tensor) -> Tensor:
        """(N, 1) score s_i in (0, 1) from the batch's class similarities and the label."""
        stats = class_similarity(main_pooled, labels, self.num_classes)
        one_hot = F.one_hot(labels, self.num_classes).to(stats.dtype)
        return torch.sigmoid(self.uncertainty(torch.cat([stats, one_hot], dim=1)).float())

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        labels = batch.labels
        # The skip decision is made on the host copy of the labels, so it never waits on the device.
        host = batch.host_labels if batch.host_labels is not None else labels.cpu()
        counts = torch.bincount(host, minlength=self.num_classes).tolist()
        if not has_enough_per_class(counts):
            self._steps["skipped"] += 1
            return StepOutput(loss=None)
        self._steps["trained"] += 1
        opts, k = self.options, self.num_classes
        out = self.forward_branches(self.augment.train(batch.images))
        latent = self.mined_distribution(out.pooled, labels)
        score = self.uncertainty_score(out.pooled[k], labels)
        ce_main = F.cross_entropy(out.main_logits.float() * score, labels)
        l_soft = soft_loss(out.main_logits, labels, latent)
        l_sp = sp_loss(out.aux_logits.detach() if opts.sp_detach_aux else out.aux_logits, out.necked[k], labels)
        l_aux = auxiliary_ce(out.aux_logits, auxiliary_targets(labels, k))
        up, down = ramp_up(epoch - 1, opts.ramp_epoch), ramp_down(epoch - 1, opts.ramp_epoch)
        extra, extra_logs = self.extra_loss(out, labels, counts, up=up, down=down)
        loss = up * (ce_main + opts.soft_weight * l_soft + self.sp_weight * l_sp) + down * l_aux + extra
        self._ce_sum = self._ce_sum + ce_main.detach()
        self.state.update("clean_score", batch.indices, score.squeeze(1))
        self.state.update("latent_dist", batch.indices, latent)
        logs = {"ce_main": ce_main.detach(), "soft": l_soft.detach(), "sp": l_sp.detach(), "aux": l_aux.detach(),
                "score": score.detach().mean(), "ramp_up": up, "ramp_down": down, **extra_logs}
        return StepOutput(loss=loss, logits=out.main_logits, logs=logs)

    def extra_loss(self, out: DMUEOutputs, labels: Tensor, counts: list[int], *, up: float,
                   down: float) -> tuple[Tensor | float, dict]:
        """Hook for variants (``dmue_c``): an additional, already weighted loss and its logs."""
        return 0.0, {}

    def param_groups(self) -> list[ParamGroup]:
        heads = [*self.fc.parameters(), self.aux_weight, *self.necks.parameters(), *self.uncertainty.parameters()]
        head_ids = {id(p) for p in heads}
        body = [p for p in self.parameters() if id(p) not in head_ids]
        return [ParamGroup([p for p in body if p.requires_grad]),
                ParamGroup([p for p in heads if p.requires_grad], lr_scale=self.options.head_lr_ratio)]

    def epoch_record(self) -> dict[str, Tensor]:
        return {"clean_score": self.state["clean_score"], "latent_dist": self.state["latent_dist"]}
