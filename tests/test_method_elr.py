"""ELR: the regularizer's value, gradient and target update against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.methods.base import Batch
from noisyfer.methods.elr import ELROptions, ELRRegularizer, elr_penalty, elr_probabilities, elr_target_update
from noisyfer.models import create_backbone


def _two_sample_example():
    """Sample A (dataset index 4): logits 0 -> p = (1/3, 1/3, 1/3), stored target (0.6, 0.2, 0.2).
    Sample B (index 1): logits (ln 2, 0, 0) -> p = (0.5, 0.25, 0.25), stored target 0 (never seen)."""
    reg = ELRRegularizer(num_train=5, num_classes=3, beta=0.5, lam=2.0)
    reg.state.update("target", torch.tensor([4]), torch.tensor([[0.6, 0.2, 0.2]]))
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]], requires_grad=True)
    return reg, logits, torch.tensor([4, 1])


def test_value_and_target_update_by_hand():
    reg, logits, indices = _two_sample_example()
    value = reg(logits, indices)
    # A: t = 0.5 (0.6, 0.2, 0.2) + 0.5 (1/3, 1/3, 1/3) = (0.466667, 0.266667, 0.266667); <t, p> = 1/3
    # B: t = 0.5 * 0 + 0.5 (0.5, 0.25, 0.25) = (0.25, 0.125, 0.125); <t, p> = 0.125 + 2 * 0.03125 = 0.1875
    # value = lam * mean(log(2/3), log(0.8125)) = 2 * (-0.405465 - 0.207639) / 2 = -0.613104
    assert value.item() == pytest.approx(-0.6131045, abs=1e-6)
    targets = reg.targets
    assert torch.allclose(targets[4], torch.tensor([0.4666667, 0.2666667, 0.2666667]), atol=1e-6)
    assert torch.allclose(targets[1], torch.tensor([0.25, 0.125, 0.125]), atol=1e-7)
    # only the two batch rows moved
    assert torch.equal(targets[[0, 2, 3]], torch.zeros(3, 3))


def test_gradient_by_hand_pushes_towards_the_target():
    reg, logits, indices = _two_sample_example()
    reg(logits, indices).backward()
    # d/dz log(1 - <t, p>) = -(p * t - p <t, p>) / (1 - <t, p>); times lam / N = 1
    # A: p*t = t/3, p<t,p> = 1/9 -> (-0.066667, 0.033333, 0.033333)
    # B: p*t = (0.125, 0.03125, 0.03125), p<t,p> = 0.1875 p -> (-0.038462, 0.019231, 0.019231)
    expected = torch.tensor([[-0.0666667, 0.0333333, 0.0333333], [-0.0384615, 0.0192308, 0.0192308]])
    assert torch.allclose(logits.grad, expected, atol=1e-6)
    # gradient descent raises the logit of the target's largest class (class 0 for both)
    assert (logits.grad[:, 0] < 0).all()


def test_eval_mode_reads_targets_without_moving_them():
    reg, logits, indices = _two_sample_example()
    reg.eval()
    value = reg(logits, indices)
    # A against the stored (0.6, 0.2, 0.2): <t, p> = 1/3; B against 0: log(1) = 0
    assert value.item() == pytest.approx(2 * (math.log(2 / 3) + 0.0) / 2, abs=1e-6)
    assert torch.equal(reg.targets[1], torch.zeros(3))
    assert torch.allclose(reg.targets[4], torch.tensor([0.6, 0.2, 0.2]))


def test_clamped_probabilities_are_renormalised_in_the_target():
    probs = elr_probabilities(torch.tensor([[20.0, 0.0, 0.0]]))
    # softmax = (1 - 4.1e-9, 2.1e-9, 2.1e-9) -> clamped (0.9999, 1e-4, 1e-4), sum 1.0001
    assert torch.allclose(probs, torch.tensor([[0.9999, 1e-4, 1e-4]]))
    target = elr_target_update(torch.zeros(1, 3), probs, beta=0.0)
    assert torch.allclose(target, torch.tensor([[0.99980002, 9.999e-5, 9.999e-5]]), atol=1e-8)
    # <t, p> = 0.99970006 -> log(2.9994e-4) = -8.111928: finite although p is nearly one-hot
    assert elr_penalty(target, probs, lam=1.0).item() == pytest.approx(-8.111928, abs=1e-3)


def test_repeated_visits_follow_the_moving_average():
    reg = ELRRegularizer(num_train=2, num_classes=2, beta=0.7, lam=1.0)
    logits = torch.tensor([[math.log(3.0), 0.0]])  # p = (0.75, 0.25)
    for _ in range(3):
        reg(logits, torch.tensor([0]))
    # t_n = (1 - 0.7^n) p: after 3 visits 0.657 p = (0.49275, 0.16425)
    assert torch.allclose(reg.targets[0], torch.tensor([0.49275, 0.16425]), atol=1e-6)
    assert torch.equal(reg.targets[1], torch.zeros(2))


def test_options_and_arguments_are_validated():
    with pytest.raises(ValueError, match="beta"):
        ELROptions(beta=1.0)
    with pytest.raises(ValueError, match="lam"):
        ELROptions(lam=-1.0)
    with pytest.raises(ValueError, match="beta"):
        ELRRegularizer(num_train=3, num_classes=2, beta=-0.1)
    reg = ELRRegularizer(num_train=3, num_classes=2)
    with pytest.raises(ValueError, match="logits"):
        reg(torch.zeros(2, 3), torch.tensor([0, 1]))


def _elr_method(num_train=10):
    torch.manual_seed(0)
    aug = Augmenter(AugmentConfig(erasing=0.0, hflip=0.0, crop_padding=0.0), image_size=32)
    return create_method("elr", backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=num_train,
                         options=ELROptions(beta=0.7, lam=3.0), augment=aug, image_size=32)


def test_method_loss_is_ce_plus_regularizer_and_moves_only_batch_targets():
    method = _elr_method()
    method.train()
    images = torch.rand(4, 3, 32, 32)
    batch = Batch(images=images, labels=torch.tensor([0, 1, 2, 3]), indices=torch.tensor([7, 2, 5, 0]))
    out = method.training_step(batch, epoch=1)
    p = out.logits.detach().softmax(1).clamp(1e-4, 1 - 1e-4)
    t = 0.3 * p / p.sum(1, keepdim=True)  # first visit: (1 - beta) p / sum(p)
    expected = F.cross_entropy(out.logits.detach(), batch.labels) + 3.0 * torch.log(1 - (t * p).sum(1)).mean()
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-5)
    targets = method.elr.targets
    assert torch.allclose(targets[batch.indices], t, atol=1e-6)
    untouched = [i for i in range(10) if i not in (7, 2, 5, 0)]
    assert torch.equal(targets[untouched], torch.zeros(len(untouched), 7))
    record = method.epoch_record()["label_dist"]
    assert torch.allclose(record[7].sum(), torch.tensor(1.0)) and record[1].sum() == 0


def test_targets_are_saved_with_the_method():
    method = _elr_method()
    method.train()
    batch = Batch(images=torch.rand(2, 3, 32, 32), labels=torch.tensor([0, 1]), indices=torch.tensor([3, 4]))
    method.training_step(batch, epoch=1)
    state = method.state_dict()
    assert "elr.state.target" in state
    twin = _elr_method()
    twin.load_state_dict(state)
    assert torch.equal(twin.elr.targets, method.elr.targets)
