"""LRN: every loss term against numbers worked out by hand, the covariance parameterisations, the
vectorised Monte-Carlo draw, inference and the per-sample record."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from noisyfer.config import AugmentConfig, config_from_args
from noisyfer.engine.augment import Augmenter
from noisyfer.errors import UserError
from noisyfer.methods.base import Batch
from noisyfer.methods.lrn import (LRN, LRNOptions, center_spread, cld_loss, covariance_factor, heteroscedastic_nll,
                                  logit_noise, mc_softmax_log_probs, raw_size, track_class_centers,
                                  with_class_mean_gradient)
from noisyfer.models import create_backbone

SOFTPLUS_0 = math.log(2.0)  # softplus(0)
RAW_FOR_ONE = math.log(math.e - 1.0)  # softplus(log(e - 1)) = log(e) = 1


def make_lrn(num_classes: int = 7, num_train: int = 100, **options) -> LRN:
    torch.manual_seed(0)
    return LRN(backbone=create_backbone("resnet_tiny"), num_classes=num_classes, num_train=num_train,
               options=LRNOptions(**options), augment=Augmenter(AugmentConfig(), image_size=32), image_size=32)


# -- Eq. 1-2 -----------------------------------------------------------------------------------

def test_zero_covariance_reduces_to_tempered_softmax_cross_entropy():
    # mu / T = [2, 4, 0]; log-sum-exp = log(e^2 + e^4 + 1) = 4.1429316
    mean = torch.tensor([[1.0, 2.0, 0.0]])
    noise = logit_noise(torch.zeros(1, 3, 3), torch.randn(5, 1, 3))
    log_p = mc_softmax_log_probs(mean, noise, temperature=0.5)
    assert torch.allclose(log_p, torch.tensor([[-2.1429316, -0.1429316, -4.1429316]]), atol=1e-5)
    assert heteroscedastic_nll(log_p, torch.tensor([0])).item() == pytest.approx(2.1429316, abs=1e-5)


def test_mc_average_of_probabilities_with_fixed_factor_and_draws():
    # B = [[1, 0], [0.5, 1]]; eps_1 = (1, 0) -> noise (1, 0.5); eps_2 = (0, -2) -> noise (0, -2); T = 1.
    # softmax(1, 0.5) = (0.6224593, 0.3775407), softmax(0, -2) = (0.8807971, 0.1192029)
    # average (0.7516282, 0.2483718), log = (-0.2855135, -1.3928285)
    factor = torch.tensor([[[1.0, 0.0], [0.5, 1.0]]])
    eps = torch.tensor([[[1.0, 0.0]], [[0.0, -2.0]]])
    noise = logit_noise(factor, eps)
    assert torch.allclose(noise, torch.tensor([[[1.0, 0.5]], [[0.0, -2.0]]]))
    log_p = mc_softmax_log_probs(torch.zeros(1, 2), noise, temperature=1.0)
    assert torch.allclose(log_p, torch.tensor([[-0.2855135, -1.3928285]]), atol=1e-6)
    # Eq. 2 is the log of the average; the average of the logs would be (log .6224593 + log .8807971)/2 = -0.3005025
    loss = heteroscedastic_nll(log_p, torch.tensor([0]))
    assert loss.item() == pytest.approx(0.2855135, abs=1e-6)
    assert loss.item() != pytest.approx(0.3005025, abs=1e-3)


def test_full_factor_is_lower_triangular_with_softplus_diagonal():
    # C = 2: raw = (L00, L10, L11) row by row of the lower triangle
    factor = covariance_factor(torch.tensor([[0.0, 0.5, RAW_FOR_ONE]]), num_classes=2, kind="full", min_scale=1e-3)
    expected = torch.tensor([[[SOFTPLUS_0 + 1e-3, 0.0], [0.5, 1.0 + 1e-3]]])
    assert torch.allclose(factor, expected, atol=1e-6)
    # a negative raw diagonal still gives a positive diagonal: softplus(-30) + 1e-3 > 0
    low = covariance_factor(torch.tensor([[-30.0, -2.0, -30.0]]), num_classes=2, kind="full", min_scale=1e-3)
    assert (torch.diagonal(low, dim1=1, dim2=2) > 1e-3 - 1e-9).all()
    assert low[0, 1, 0].item() == -2.0 and low[0, 0, 1].item() == 0.0


def test_diagonal_and_low_rank_factors():
    diag = covariance_factor(torch.tensor([[0.0, RAW_FOR_ONE]]), num_classes=2, kind="diagonal", min_scale=1e-3)
    assert torch.allclose(diag, torch.tensor([[[SOFTPLUS_0 + 1e-3, 0.0], [0.0, 1.001]]]), atol=1e-6)
    # rank 1: V = (1, -1), diagonal raw (log(e-1), log(e-1)) -> 1.001; cov = V V^T + diag(1.001^2)
    raw = torch.tensor([[1.0, -1.0, RAW_FOR_ONE, RAW_FOR_ONE]])
    factor = covariance_factor(raw, num_classes=2, kind="low_rank", rank=1, min_scale=1e-3)
    assert factor.shape == (1, 2, 3)
    cov = factor @ factor.transpose(1, 2)
    assert torch.allclose(cov, torch.tensor([[[1 + 1.001**2, -1.0], [-1.0, 1 + 1.001**2]]]), atol=1e-5)
    assert [raw_size(7, k, 3) for k in ("full", "diagonal", "low_rank")] == [28, 7, 28]


def test_noise_draws_have_the_modelled_covariance():
    factor = torch.tensor([[[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.2, 0.3]]])
    generator = torch.Generator().manual_seed(0)
    noise = logit_noise(factor, torch.randn(200_000, 1, 3, generator=generator))[:, 0]
    empirical = noise.T @ noise / noise.shape[0]
    assert torch.allclose(empirical, factor[0] @ factor[0].T, atol=0.02)


# -- Eq. 3-4 -----------------------------------------------------------------------------------

def test_cld_loss_two_classes_in_two_dimensions():
    # centers (0,0), (2,0): centroid (1,0), sigma^2 = (1 + 1)/2 = 1
    # f1 = (0,1): d^2 = (1, 5), omega = (1, e^-4)/(1 + e^-4); f2 = (2,0): d^2 = (4, 0), omega = (e^-4, 1)/(1 + e^-4)
    # sum omega d^2 = (1 + 5e^-4 + 4e^-4)/(1 + e^-4) = 1.1438897; / (sigma^2 M C = 4) = 0.2859724
    centers = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    features = torch.tensor([[0.0, 1.0], [2.0, 0.0]], requires_grad=True)
    assert center_spread(centers).item() == pytest.approx(1.0)
    loss = cld_loss(features, centers)
    assert loss.item() == pytest.approx(0.2859724, abs=1e-6)
    # the confidences carry no gradient: d/df1 = sum_c 2 omega_c (f1 - mu_c) / 4 = (-omega_1, 0.5), omega_1 = 0.0179862
    loss.backward()
    assert torch.allclose(features.grad[0], torch.tensor([-0.0179862, 0.5]), atol=1e-6)


def test_cld_loss_cannot_be_lowered_by_shrinking_everything():
    torch.manual_seed(0)
    features, centers = torch.randn(16, 5), torch.randn(4, 5)
    full = cld_loss(features, centers)
    assert cld_loss(0.5 * features, 0.5 * centers) >= full
    # centers 3 e_c in 4-D: every center is 6.75 (squared) from the centroid, so sigma^2 = 6.75; features
    # at the centroid get uniform confidences and loss = 6.75 / (6.75 C) = 1/4; features on the centers ~ 0
    centers = 3.0 * torch.eye(4)
    between = centers.mean(0, keepdim=True).repeat(16, 1)
    assert cld_loss(between, centers).item() == pytest.approx(0.25, abs=1e-6)
    tight = centers.repeat(4, 1) + 0.01 * torch.randn(16, 4)
    assert cld_loss(tight, centers).item() < 1e-4


def test_cld_loss_leaves_out_centers_without_a_class_yet():
    # the two-class case above plus a third centre far away that is not valid: same value, 0.2859724
    centers = torch.tensor([[0.0, 0.0], [2.0, 0.0], [50.0, 50.0]])
    features = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    valid = torch.tensor([True, True, False])
    assert cld_loss(features, centers, valid).item() == pytest.approx(0.2859724, abs=1e-6)
    assert center_spread(centers, valid).item() == pytest.approx(1.0)
    # one valid centre: sigma_k undefined -> 0, with a finite zero gradient; none valid: 0 as well
    grad_features = features.clone().requires_grad_(True)
    one = cld_loss(grad_features, centers, torch.tensor([True, False, False]))
    one.backward()
    assert one.item() == 0.0 and torch.equal(grad_features.grad, torch.zeros_like(features))
    assert cld_loss(features, centers, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_class_centers_start_at_a_class_first_batch_mean_then_follow_wens_rule():
    centers, seen = torch.zeros(3, 1), torch.zeros(3, dtype=torch.bool)
    # batch 1: class 0 -> mean(0, 2) = 1, class 1 -> 10, class 2 absent: stays 0 and unseen
    centers, seen = track_class_centers(centers, seen, torch.tensor([[0.0], [2.0], [10.0]]), torch.tensor([0, 0, 1]),
                                        alpha=0.5)
    assert centers.flatten().tolist() == [1.0, 10.0, 0.0] and seen.tolist() == [True, True, False]
    # batch 2: class 0 sees 4: delta = (1 * 1 - 4) / (1 + 1) = -1.5 -> 1 + 0.5 * 1.5 = 1.75; class 2 first seen: 7
    centers, seen = track_class_centers(centers, seen, torch.tensor([[4.0], [7.0]]), torch.tensor([0, 2]), alpha=0.5)
    assert centers.flatten().tolist() == [1.75, 10.0, 7.0] and seen.all()


def test_cld_gradient_through_class_mean_centres_does_not_shrink_the_features():
    # CLD is invariant to scaling features and centres together, so when the centres are the features'
    # class means (and differentiated as such) the gradient is orthogonal to the features (Euler:
    # <grad, f> = 0): no pull towards the origin. With the same centres held constant it has a
    # positive component along f, so descent contracts the features (and 1/sigma_k^2 then grows).
    torch.manual_seed(0)
    features = torch.randn(12, 5).abs().requires_grad_(True)
    labels = torch.arange(12) % 3
    means = torch.stack([features.detach()[labels == c].mean(0) for c in range(3)])
    valid = torch.ones(3, dtype=torch.bool)
    centres = with_class_mean_gradient(means, features, labels)
    assert torch.equal(centres.detach(), means)  # values: the centres given
    cld_loss(features, centres, valid).backward()
    assert abs((features.grad * features.detach()).sum().item()) < 1e-5
    features.grad = None
    cld_loss(features, means, valid).backward()
    assert (features.grad * features.detach()).sum().item() > 1.0


def _centre_to_class_mean_distances(centers: str) -> tuple[Tensor, Tensor]:
    """Train LRN on one fixed batch for 6 Adam steps; distances of its centres to the class means of
    the batch's features at the end, and the spread of those class means (for scale)."""
    torch.manual_seed(0)
    method = LRN(backbone=create_backbone("resnet_tiny"), num_classes=3, num_train=24,
                 options=LRNOptions(samples=20, test_samples=20, centers=centers),
                 augment=Augmenter(AugmentConfig(hflip=0.0, crop_padding=0.0, erasing=0.0), image_size=32),
                 image_size=32)
    method.train()
    optimizer = torch.optim.Adam([p for g in method.param_groups() for p in g.params], lr=1e-3)
    labels = torch.arange(24) % 3
    images = (torch.rand(24, 3, 32, 32) * 0.3 + labels.view(-1, 1, 1, 1) * 0.3).clamp(0, 1)
    batch = Batch(images=images, labels=labels, indices=torch.arange(24))
    for _ in range(6):
        optimizer.zero_grad()
        method.training_step(batch, epoch=1).loss.backward()
        optimizer.step()
    with torch.no_grad():
        features = method.backbone(method.augment.train(images)).features
    means = torch.stack([features[labels == c].mean(0) for c in range(3)])
    return (method.centers.detach() - means).norm(dim=1), center_spread(means).sqrt()


def test_class_mean_centers_end_near_the_class_means_of_the_features():
    # the centres lag the moving features by a step or two of Wen's rule (about 0.2 of the spread here)
    distances, spread = _centre_to_class_mean_distances("class_mean")
    assert (distances < 0.3 * spread).all(), (distances, spread)
    # the earlier reading: standard-normal centres moved only by the CLD gradient stay far from every class
    distances, spread = _centre_to_class_mean_distances("learned")
    assert (distances > 2 * spread).all(), (distances, spread)


# -- the method --------------------------------------------------------------------------------

def test_training_step_draws_all_samples_in_one_tensor(monkeypatch):
    method = make_lrn(samples=1000)
    method.train()
    calls = []
    randn = torch.randn

    def recording_randn(*args, **kwargs):
        out = randn(*args, **kwargs)
        calls.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch, "randn", recording_randn)
    images = torch.rand(64, 3, 32, 32)
    batch = Batch(images=images, labels=torch.arange(64) % 7, indices=torch.arange(64))
    out = method.training_step(batch, epoch=1)
    assert calls == [(1000, 64, 7)]
    assert torch.isfinite(out.loss) and out.logits.shape == (64, 7)
    out.loss.backward()
    assert method.covariance_head.weight.grad.abs().sum() > 0
    # class-mean centres are buffers: the CLD gradient reaches the features only
    assert not method.centers.requires_grad and "centers" not in dict(method.named_parameters())


def test_loss_terms_and_per_sample_noise_std():
    method = make_lrn(num_train=10, samples=50)
    method.train()
    # a constant covariance head: factor = diag(softplus(0) + 1e-3) -> noise_std = 0.6941472
    torch.nn.init.zeros_(method.covariance_head.weight)
    torch.nn.init.zeros_(method.covariance_head.bias)
    batch = Batch(images=torch.rand(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 3]),
                  indices=torch.tensor([1, 3, 5, 7]))
    out = method.training_step(batch, epoch=1)
    assert out.loss.item() == pytest.approx((out.logs["loss_cls"] + out.logs["loss_cld"]).item(), rel=1e-6)
    std = method.epoch_record()["noise_std"]
    assert torch.allclose(std[[1, 3, 5, 7]], torch.full((4,), SOFTPLUS_0 + 1e-3), atol=1e-6)
    assert torch.isnan(std[[0, 2, 4, 6, 8, 9]]).all()
    record = method.epoch_record()
    assert torch.allclose(record["clean_score"][1], torch.tensor(1 / (1 + SOFTPLUS_0 + 1e-3)))


def test_cld_weight_zero_leaves_only_the_heteroscedastic_loss():
    method = make_lrn(samples=20, cld_weight=0.0)
    method.train()
    batch = Batch(images=torch.rand(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 3]), indices=torch.arange(4))
    out = method.training_step(batch, epoch=1)
    assert "loss_cld" not in out.logs
    assert out.loss.item() == pytest.approx(out.logs["loss_cls"].item())


def test_mc_inference_is_deterministic_per_image_and_tends_to_softmax_without_noise():
    method = make_lrn(covariance="diagonal", test_samples=200)
    method.eval()
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        full = method.predict(x)
        assert torch.equal(full, method.predict(x))
        assert torch.allclose(full[2:3], method.predict(x[2:3]), atol=1e-5)
        # a vanishing covariance: softplus(-30) + 1e-6 -> the MC average is softmax(d / T)
        method.options.min_scale = 1e-6
        torch.nn.init.zeros_(method.covariance_head.weight)
        torch.nn.init.constant_(method.covariance_head.bias, -30.0)
        mean = method.mean_head(method.backbone(x).features) / method.options.temperature
        assert torch.allclose(method.predict(x), mean.log_softmax(1), atol=1e-4)
        method.options.inference = "mean"
        assert torch.allclose(method.predict(x), mean)


def test_weights_saved_with_learned_centres_load_into_the_class_mean_default():
    # an LRN run from before issue 14 (learned centres) can still be evaluated and reported
    old = make_lrn(centers="learned").state_dict()
    method = make_lrn()
    method.load_state_dict(old)
    assert method.center_seen.all() and torch.equal(method.centers, old["centers"])


def test_learned_centers_have_their_own_learning_rate_and_no_weight_decay():
    method = make_lrn(centers="learned", center_lr_scale=10.0)
    groups = method.param_groups()
    assert groups[1].params == [method.centers]
    assert groups[1].lr_scale == 10.0 and groups[1].weight_decay == 0.0 and groups[0].weight_decay is None
    assert sum(p.numel() for g in groups for p in g.params) == sum(p.numel() for p in method.parameters())


@pytest.mark.parametrize("item, field", [
    ("method.covariance=banded", "covariance"), ("method.samples=0", "samples"),
    ("method.temperature=0", "temperature"), ("method.inference=vote", "inference"),
    ("method.cld_weight=-1", "cld_weight"), ("method.centers=random", "centers"),
    ("method.center_alpha=0", "center_alpha"),
])
def test_bad_options_name_the_field(item, field):
    with pytest.raises(UserError, match=field):
        config_from_args(None, ["method=lrn", item])


def test_homoscedastic_ablation_is_cross_entropy_on_the_mean_logits():
    method = make_lrn(heteroscedastic=False, cld_weight=0.0)
    method.train()
    batch = Batch(images=torch.rand(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 3]), indices=torch.arange(4))
    torch.manual_seed(3)
    out = method.training_step(batch, epoch=1)
    torch.manual_seed(3)
    logits = method.mean_head(method.backbone(method.augment.train(batch.images)).features)
    assert out.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, batch.labels).item(), rel=1e-6)
    assert torch.isnan(method.epoch_record()["noise_std"]).all()
