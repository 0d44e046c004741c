"""LRN: heteroscedastic logit noise with Monte-Carlo softmax, plus the CLD loss (Yan et al., ICME 2022).

The losses are module-level functions, so tests check them on hand-sized tensors:

* :func:`covariance_factor` turns the covariance head's raw outputs into a factor ``B(x)`` (N, C, K)
  with ``cov(x) = B B^T`` (full: lower-triangular Cholesky factor; diagonal; low rank + diagonal),
* :func:`logit_noise` draws the correlated noise ``B(x) eps`` for standard normals eps (S, N, K),
* :func:`mc_softmax_log_probs` is the log of Eq. 1, the MC average of ``softmax((d + noise) / T)``,
* :func:`heteroscedastic_nll` is Eq. 2 on it,
* :func:`cld_loss` is Eq. 3-4, and :func:`track_class_centers` keeps its category centres mu_c at
  the class means of the features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, ParamGroup, StepOutput
from .center_loss import center_update

COVARIANCES = ("full", "diagonal", "low_rank")
INFERENCES = ("mc", "mean")
CENTERS = ("class_mean", "learned")


def covariance_factor(raw: Tensor, *, num_classes: int, kind: str, rank: int = 0, min_scale: float = 1e-3) -> Tensor:
    """Factor ``B`` (N, C, K) of the input-dependent logit covariance ``B B^T`` from raw head outputs.

    Parameters
    ----------
    raw
        (N, P) outputs of the covariance head: P = C(C+1)/2 (``full``: the lower triangle, row by
        row), C (``diagonal``) or C*rank + C (``low_rank``: the C x rank factor row by row, then
        the diagonal).
    kind
        ``full`` (K = C, lower-triangular with a positive diagonal: a Cholesky factor, so any
        covariance is reachable), ``diagonal`` (K = C) or ``low_rank`` (K = rank + C, Collier et
        al.'s ``V V^T + diag(s)^2``).
    min_scale
        Added to the softplus of every diagonal entry, which keeps the covariance positive definite.
    """
    n, c = raw.shape[0], num_classes
    if kind == "full":
        rows, cols = torch.tril_indices(c, c, device=raw.device)
        entries = torch.where(rows == cols, F.softplus(raw) + min_scale, raw)
        factor = raw.new_zeros(n, c, c)
        factor[:, rows, cols] = entries
        return factor
    if kind == "diagonal":
        return torch.diag_embed(F.softplus(raw) + min_scale)
    if kind == "low_rank":
        low = raw[:, : c * rank].reshape(n, c, rank)
        diag = torch.diag_embed(F.softplus(raw[:, c * rank:]) + min_scale)
        return torch.cat([low, diag], dim=2)
    raise ValueError(f"covariance must be one of {', '.join(COVARIANCES)}, got {kind!r}")


def raw_size(num_classes: int, kind: str, rank: int) -> int:
    """Number of covariance-head outputs :func:`covariance_factor` expects."""
    return {"full": num_classes * (num_classes + 1) // 2, "diagonal": num_classes,
            "low_rank": num_classes * rank + num_classes}[kind]


def logit_noise(factor: Tensor, standard_normal: Tensor) -> Tensor:
    """Correlated logit noise ``B(x_n) eps_{s,n}``: (N, C, K) x (S, N, K) -> (S, N, C), one batched product."""
    return torch.einsum("nck,snk->snc", factor, standard_normal)


def mc_softmax_log_probs(mean_logits: Tensor, noise: Tensor, *, temperature: float) -> Tensor:
    """Log of Eq. 1: ``log (1/S) sum_s softmax((d(x) + noise_s) / T)``, (N, C) from (N, C) and (S, N, C).

    The average is over probabilities (a log-sum-exp of log-softmaxes, minus log S), not over
    log-probabilities: this is what lets the noise absorb a label that disagrees with d(x).
    """
    log_probs = ((mean_logits.unsqueeze(0) + noise) / temperature).log_softmax(dim=-1)
    return torch.logsumexp(log_probs, dim=0) - math.log(noise.shape[0])


def heteroscedastic_nll(log_mc_probs: Tensor, labels: Tensor) -> Tensor:
    """Eq. 2, averaged over the batch: ``-mean_i log p'_{y_i}(x_i)``.

    The paper writes Eq. 2 as a sum over the N samples; the mean keeps the balance with the CLD
    term (Eq. 4, which divides by the batch size M) independent of the batch size: with the sum,
    lambda_1 = 1 at batch 64 would weight CLD 64 times less.
    """
    return F.nll_loss(log_mc_probs, labels)


def center_spread(centers: Tensor, valid: Tensor | None = None) -> Tensor:
    """sigma_k^2 of Eq. 4: mean squared distance of the C centers (C, D) to their centroid.

    ``valid`` (C,) bool leaves centers out (classes not seen yet); both means are over the valid ones.
    """
    if valid is None:
        return (centers - centers.mean(dim=0, keepdim=True)).pow(2).sum(dim=1).mean()
    w = valid.to(centers.dtype)
    n = w.sum().clamp_min(1.0)
    centroid = (centers * w[:, None]).sum(dim=0, keepdim=True) / n
    return ((centers - centroid).pow(2).sum(dim=1) * w).sum() / n


@torch.no_grad()
def track_class_centers(centers: Tensor, seen: Tensor, features: Tensor, labels: Tensor, *,
                        alpha: float) -> tuple[Tensor, Tensor]:
    """Category centres that follow the class means of the features, and which classes have one.

    A class seen for the first time gets the mean of its features in the batch; a class seen before
    moves by Wen et al.'s rule (:func:`~noisyfer.methods.center_loss.center_update`, rate
    ``alpha``: towards the batch's class mean, the old centre counting as one sample); classes absent
    from the batch keep their centre. Device-only, no read-back. In a distributed run every rank sees the
    whole global batch (:mod:`noisyfer.engine.distributed`), so every rank keeps the same centres.

    Parameters
    ----------
    centers, seen
        (C, D) centres and (C,) bool: classes that have a centre.
    features, labels
        (M, D) features (detached here) and their (M,) int64 labels.

    Returns
    -------
    centers, seen
        The new centres (C, D) and flags (C,).
    """
    x = features.detach().float()
    sums = torch.zeros(centers.shape[0], x.shape[1], device=x.device).index_add_(0, labels, x)
    counts = torch.zeros(centers.shape[0], device=x.device).index_add_(0, labels, torch.ones_like(x[:, 0]))
    present = counts > 0
    moved = center_update(centers.float(), x, labels, alpha=alpha)
    first = (present & ~seen)[:, None]
    new = torch.where(first, sums / counts.clamp_min(1.0)[:, None], moved)
    return new.to(centers.dtype), seen | present


def with_class_mean_gradient(centers: Tensor, features: Tensor, labels: Tensor) -> Tensor:
    """``centers`` (C, D) as values, with the gradient of the batch's class means of ``features``.

    ``centers + (m - stopgrad(m))`` for the classes present in the batch (m their mean features):
    the value is the tracked centre, the gradient that of a centre computed from the features. CLD
    is invariant to scaling features and centres together, so through these centres its gradient has
    no component that shrinks the features; with constant centres the loss would pull the features
    towards the (noisy-label) class means, and its 1 / sigma_k^2 would grow as they contract, which
    collapses all features to a point within a few epochs (measured on the simulator).
    """
    x = features.float()
    sums = torch.zeros(centers.shape[0], x.shape[1], device=x.device, dtype=x.dtype).index_add(0, labels, x)
    counts = torch.zeros(centers.shape[0], device=x.device).index_add_(0, labels, torch.ones_like(x[:, 0].detach()))
    means = sums / counts.clamp_min(1.0)[:, None]
    return centers.float() + torch.where((counts > 0)[:, None], means - means.detach(), torch.zeros_like(means))


def cld_loss(features: Tensor, centers: Tensor, valid: Tensor | None = None) -> Tensor:
    """Confidence-based label-free discriminative loss (Eq. 3-4).

    ``omega_ic = softmax_c(-||f_i - mu_c||^2)`` (Eq. 3 with the metric d = negative squared
    distance, so the nearest center gets the highest confidence; treated as a fixed weight, no
    gradient), and ``sum_ic omega_ic ||f_i - mu_c||^2 / (sigma_k^2 M C)`` (Eq. 4) with
    ``sigma_k^2`` from :func:`center_spread`. Dividing by the spread of the centers means the loss
    cannot be lowered by shrinking features and centers together towards a point (the distance
    ratios stay, and the confidences only get flatter).

    Parameters
    ----------
    features
        (M, D) features f(x_i) of the batch.
    centers
        (C, D) class centers mu_c.
    valid
        Optional (C,) bool: only these centers count (C in Eq. 4 is their number). With fewer than two
        valid centers sigma_k is undefined and the loss is 0 (without gradient and without a read-back).
    """
    distances = (features.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)  # (M, C)
    m, c = distances.shape
    if valid is None:
        weights = (-distances).softmax(dim=1).detach()
        return (weights * distances).sum() / (center_spread(centers) * m * c)
    weights = (-distances).masked_fill(~valid, torch.finfo(distances.dtype).min).softmax(dim=1).detach()
    count = valid.sum()
    denominator = center_spread(centers, valid) * m * count
    denominator = torch.where(count >= 2, denominator, torch.full_like(denominator, float("inf")))
    return (weights * distances.masked_fill(~valid, 0.0)).sum() / denominator


@dataclass
class LRNOptions:
    """Options of the ``lrn`` method (defaults: the paper's).

    Attributes
    ----------
    samples
        S, Monte-Carlo samples of the logits per image at training time (paper: 1000).
    test_samples
        S at inference when ``inference="mc"``.
    temperature
        T of the softmax in Eq. 1 (paper: 0.7).
    covariance
        ``full`` (the paper: full C x C covariance via a Cholesky factor), ``diagonal`` or
        ``low_rank`` (Collier et al.'s low rank + diagonal; ablations).
    rank
        Rank of the low-rank part for ``covariance="low_rank"``.
    min_scale
        Floor added to the softplus diagonal of the factor (Collier et al.: 1e-3).
    cld_weight
        lambda_1 of Eq. 5 (paper: 1); 0 trains the heteroscedastic head alone (Table 2, "LRN L_cls").
    heteroscedastic
        False replaces Eq. 1-2 by plain cross-entropy on d(x) (Table 2, "Baseline"; with
        ``cld_weight=0`` the plain CE baseline). The covariance head then goes unused.
    centers
        How the category centres mu_c of Eq. 3-4 are made. ``class_mean`` (default): they follow the
        class means of the pooled features under the training labels (a class's first batch gives
        its mean, then Wen et al.'s averaging at rate ``center_alpha`` every step; they are not
        parameters, and the loss differentiates them as the batch's class means), so each mu_c is
        the centre of its class. ``learned``: standard-normal vectors trained by the
        CLD gradient alone (noisyfer before issue 14): at the paper's learning rate they barely
        move and tie to no class.
    center_alpha
        Update rate of ``centers=class_mean`` in (0, 1] (Wen et al.'s alpha; 1 = the plain average
        of the old centre and the batch's features of the class).
    center_lr_scale
        Learning rate of the centers as a multiple of the run's, with ``centers=learned`` (the
        paper does not say).
    inference
        ``mc``: log of the MC-averaged probabilities with ``test_samples`` samples (the paper's
        predicted probability, Eq. 1; also what Collier et al.'s layer returns at test time);
        ``mean``: the mean logits d(x) / T (the noise-free term; always used when
        ``heteroscedastic`` is False).
    inference_seed
        Seed of the noise draws at inference; the same draws serve every image, so a prediction
        depends on the image only, not on the batch around it.
    """

    samples: int = 1000
    test_samples: int = 1000
    temperature: float = 0.7
    covariance: str = "full"
    rank: int = 3
    min_scale: float = 1e-3
    cld_weight: float = 1.0
    heteroscedastic: bool = True
    centers: str = "class_mean"
    center_alpha: float = 0.5
    center_lr_scale: float = 1.0
    inference: str = "mc"
    inference_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("samples", "test_samples", "rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("temperature", "min_scale", "center_lr_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.cld_weight < 0:
            raise ValueError(f"cld_weight must be non-negative, got {self.cld_weight}")
        if not 0.0 < self.center_alpha <= 1.0:
            raise ValueError(f"center_alpha must be in (0, 1], got {self.center_alpha}")
        for name, allowed in (("covariance", COVARIANCES), ("inference", INFERENCES), ("centers", CENTERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")


@register_method("lrn", options=LRNOptions)
class LRN(Method):
    """Heteroscedastic MC-softmax head with full logit covariance, plus the label-free CLD loss.

    Yan et al., "Mitigating label-noise for facial expression recognition in the wild", ICME 2022.
    Eq. 1: logits ~ N(d(x), cov(x)) with d = FC1(f(x)) and cov = B B^T, B from FC2(f(x))
    (:func:`covariance_factor`; full covariance by default since FER has few classes), and
    p'(x) = mean over S samples of softmax(logits / T), S = 1000, T = 0.7. The noise is drawn at
    the logit level as one (S, N, K) tensor, so S = 1000 costs little. Eq. 2: CE on log p'(x),
    averaged over the batch where the paper sums (:func:`heteroscedastic_nll`). Eq. 3-4:
    :func:`cld_loss` between the pooled features and the category centres mu_c, weight
    lambda_1 = 1 (Eq. 5).

    The paper leaves open, and this implementation chooses: the metric of Eq. 3 (negative squared
    Euclidean distance, weights without gradient), sigma_k (root mean squared distance of the
    centers to their centroid), how the centres are made (``centers=class_mean``: the class means
    of the features, tracked every step by :func:`track_class_centers`, not parameters; a class
    gets a centre, and counts in Eq. 4, from its first batch on; the loss sees them with the gradient of the batch's class means,
    :func:`with_class_mean_gradient`, so that sigma_k keeps the features from contracting), and
    inference (the MC average of Eq. 1 with fixed draws, as Collier et al.'s layer does;
    ``inference=mean`` gives d(x) / T). Only the centres use the labels: the pull on a feature is
    weighted by its confidences omega_ic, not by its label (the "label-free" of CLD).
    ``centers=learned`` is the earlier reading (standard-normal centres trained by the CLD gradient
    at ``center_lr_scale``; at the paper's SGD 1e-4 they move about 3e-3 per coordinate in 30
    epochs against a spread of 1, so the loss pulls towards fixed random points). No public LRN
    code exists; the head follows the paper and Collier et al. 2021.
    """

    signal = "LRN's logit noise: 1 / (1 + std), std = root mean variance of the learned logit covariance (Eq. 1-2)"

    def __init__(self, *, options: LRNOptions, **common):
        super().__init__(options=options, **common)
        c, o = self.num_classes, options
        dim = self.backbone.num_features
        self.mean_head = nn.Linear(dim, c)
        self.covariance_head = nn.Linear(dim, raw_size(c, o.covariance, o.rank))
        if o.centers == "learned":
            self.centers = nn.Parameter(torch.randn(c, dim))
        else:
            self.register_buffer("centers", torch.zeros(c, dim))
            self.register_buffer("center_seen", torch.zeros(c, dtype=torch.bool))
        self.state.register("noise_std", torch.full((self.num_train,), float("nan")))
        # The inference draws are made once, on the CPU generator: the same numbers on every device,
        # and constants (not random ops) when the prediction path is exported to ONNX or TorchScript.
        k = covariance_factor(torch.zeros(1, raw_size(c, o.covariance, o.rank)), num_classes=c, kind=o.covariance,
                              rank=o.rank).shape[2]
        generator = torch.Generator().manual_seed(o.inference_seed)
        self.register_buffer("inference_draws", torch.randn(o.test_samples, 1, k, generator=generator),
                             persistent=False)

    def heads(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Mean logits d(x) (N, C) and covariance factor B(x) (N, C, K), in float32."""
        o = self.options
        mean = self.mean_head(features).float()
        factor = covariance_factor(self.covariance_head(features).float(), num_classes=self.num_classes,
                                   kind=o.covariance, rank=o.rank, min_scale=o.min_scale)
        return mean, factor

    def forward(self, images: Tensor) -> Tensor:
        return self.predict(images)

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        o = self.options
        features = self.backbone(self.augment.train(batch.images)).features
        mean, factor = self.heads(features)
        if o.heteroscedastic:
            eps = torch.randn(o.samples, mean.shape[0], factor.shape[2], device=mean.device)
            log_probs = mc_softmax_log_probs(mean, logit_noise(factor, eps), temperature=o.temperature)
            cls = heteroscedastic_nll(log_probs, batch.labels)
        else:
            log_probs = mean.log_softmax(dim=1)
            cls = F.cross_entropy(mean, batch.labels)
        loss = cls
        logs = {"loss_cls": cls.detach()}
        if o.cld_weight > 0 and o.centers == "class_mean":
            centers, seen = track_class_centers(self.centers, self.center_seen, features, batch.labels,
                                                alpha=o.center_alpha)
            self.centers.copy_(centers)
            self.center_seen.copy_(seen)
            centers = with_class_mean_gradient(self.centers, features, batch.labels)
            cld = cld_loss(features.float(), centers, self.center_seen)
            loss = loss + o.cld_weight * cld
            logs["loss_cld"] = cld.detach()
            logs["center_spread"] = center_spread(self.centers.float(), self.center_seen).sqrt()
        elif o.cld_weight > 0:
            cld = cld_loss(features.float(), self.centers.float())
            loss = loss + o.cld_weight * cld
            logs["loss_cld"] = cld.detach()
            logs["center_spread"] = center_spread(self.centers.detach().float()).sqrt()
        if o.heteroscedastic:
            noise_std = factor.detach().pow(2).sum(dim=(1, 2)).div(self.num_classes).sqrt()
            self.state.update("noise_std", batch.indices, noise_std)
            logs["noise_std"] = noise_std.mean()
        return StepOutput(loss=loss, logits=log_probs.detach(), logs=logs)

    def predict(self, images: Tensor) -> Tensor:
        """Log MC-averaged probabilities (``inference=mc``) or d(x) / T (``inference=mean``)."""
        o = self.options
        mean, factor = self.heads(self.backbone(images).features)
        if o.inference == "mean" or not o.heteroscedastic:
            return mean / o.temperature
        eps = self.inference_draws.expand(-1, mean.shape[0], -1)
        return mc_softmax_log_probs(mean, logit_noise(factor, eps),
                                    temperature=o.temperature)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before issue 14 (centres learned, no ``center_seen``) still load, e.g. for
        # evaluation or reports of an old run: their centres count as seen.
        seen = prefix + "center_seen"
        if hasattr(self, "center_seen") and seen not in state_dict and prefix + "centers" in state_dict:
            state_dict[seen] = torch.ones_like(self.center_seen)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def param_groups(self) -> list[ParamGroup]:
        if self.options.centers != "learned":
            return super().param_groups()
        rest = [p for name, p in self.named_parameters() if name != "centers" and p.requires_grad]
        return [ParamGroup(rest), ParamGroup([self.centers], lr_scale=self.options.center_lr_scale, weight_decay=0.0)]

    def epoch_record(self) -> dict[str, Tensor]:
        """``noise_std``: root mean logit variance trace(cov)/C when the sample was last seen (NaN if
        never); ``clean_score`` = 1 / (1 + noise_std)."""
        std = self.state["noise_std"]
        return {"noise_std": std, "clean_score": 1.0 / (1.0 + std)}
