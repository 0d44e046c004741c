"""Center loss (paper 000, Eq. 2-3): value, gradient and center update against hand-computed numbers."""

from __future__ import annotations

import pytest
import torch

from noisyfer.methods.center_loss import PAPER_GAMMA, CenterLoss, center_loss, center_update
from noisyfer.registry import METHODS

# Four 2-d features; classes 0, 0, 1, 2; a fourth class (3) absent from the batch.
FEATURES = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
LABELS = torch.tensor([0, 0, 1, 2])
CENTERS = torch.tensor([[1.0, 1.0], [0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])


def _loss(alpha: float = 0.5, reduction: str = "mean") -> CenterLoss:
    module = CenterLoss(num_classes=4, feature_dim=2, alpha=alpha, reduction=reduction)
    module.centers.copy_(CENTERS)
    return module


def test_value_mean_and_sum():
    # squared distances: |[1,2]-[1,1]|^2 = 1, |[3,0]-[1,1]|^2 = 4+1 = 5, |[0,1]-[0,0]|^2 = 1,
    # |[2,2]-[2,0]|^2 = 4  -> sum 11, mean 2.75
    assert center_loss(FEATURES, LABELS, CENTERS, reduction="sum").item() == pytest.approx(11.0)
    assert center_loss(FEATURES, LABELS, CENTERS, reduction="mean").item() == pytest.approx(2.75)
    assert _loss(reduction="sum")(FEATURES, LABELS).item() == pytest.approx(11.0)


def test_gradient_flows_to_features_only():
    x = FEATURES.clone().requires_grad_(True)
    module = _loss()
    module(x, LABELS).backward()
    # d/dx_i of mean ||x_i - c||^2 = 2 (x_i - c_{y_i}) / 4
    expected = torch.tensor([[0.0, 0.5], [1.0, -0.5], [0.0, 0.5], [0.0, 1.0]])
    assert torch.allclose(x.grad, expected)
    assert not module.centers.requires_grad


def test_center_update_rule_alpha_half():
    # class 0: n=2, sum(c - x) = ([1,1]-[1,2]) + ([1,1]-[3,0]) = [-2, 0]; delta = [-2/3, 0]
    #          c <- [1,1] - 0.5 * delta = [4/3, 1]
    # class 1: delta = ([0,0]-[0,1]) / 2 = [0, -1/2]  -> c = [0, 1/4]
    # class 2: delta = ([2,0]-[2,2]) / 2 = [0, -1]    -> c = [2, 1/2]
    # class 3: absent -> unchanged
    module = _loss(alpha=0.5)
    module.train()
    loss = module(FEATURES, LABELS)
    assert loss.item() == pytest.approx(2.75)  # measured against the centers *before* the update
    expected = torch.tensor([[4 / 3, 1.0], [0.0, 0.25], [2.0, 0.5], [5.0, 5.0]])
    assert torch.allclose(module.centers, expected)


def test_alpha_one_averages_old_center_with_the_class_features():
    # (c0 + x0 + x1) / 3 = ([1,1] + [1,2] + [3,0]) / 3 = [5/3, 1]
    new = center_update(CENTERS, FEATURES, LABELS, alpha=1.0)
    assert torch.allclose(new[0], torch.tensor([5 / 3, 1.0]))
    assert torch.allclose(new[1], torch.tensor([0.0, 0.5]))  # (0 + [0,1]) / 2


def test_no_update_in_eval_mode():
    module = _loss()
    module.eval()
    module(FEATURES, LABELS)
    assert torch.equal(module.centers, CENTERS)


def test_centers_are_a_checkpointed_buffer():
    module = _loss()
    module.train()
    module(FEATURES, LABELS)
    twin = CenterLoss(num_classes=4, feature_dim=2)
    twin.load_state_dict(module.state_dict())
    assert torch.equal(twin.centers, module.centers)
    assert "centers" in dict(module.named_buffers())


def test_autocast_bf16_features_give_float32_loss_and_centers():
    module = _loss()
    module.train()
    linear = torch.nn.Linear(2, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(2))
        linear.bias.zero_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = linear(FEATURES)
        assert features.dtype == torch.bfloat16
        loss = module(features, LABELS)
    assert loss.dtype == torch.float32 and module.centers.dtype == torch.float32
    assert loss.item() == pytest.approx(2.75)  # all values are exact in bf16


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        CenterLoss(num_classes=2, feature_dim=2, alpha=0.0)
    with pytest.raises(ValueError, match="reduction"):
        CenterLoss(num_classes=2, feature_dim=2, reduction="max")
    with pytest.raises(ValueError, match=r"features \(N, 3\)"):
        CenterLoss(num_classes=2, feature_dim=3)(FEATURES, LABELS)


def test_paper_gamma_and_not_a_registered_method():
    # paper 000, implementation details: AffectNet, RAF-DB, FERPLUS, FER2013 -> 0.02, 0.01, 0.1, 0.002
    assert PAPER_GAMMA == {"affectnet": 0.02, "rafdb": 0.01, "ferplus": 0.1, "fer2013": 0.002}
    assert "center_loss" not in METHODS
