"""Co-teaching: schedule, small-loss exchange and losses by hand; the peer network from the factory."""

from __future__ import annotations

import math

import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.methods.base import TrainingSetup
from noisyfer.methods.coteaching import CoTeaching, CoTeachingOptions, coteaching_losses, keep_ratio
from noisyfer.models import create_backbone

L3 = math.log(3.0)


def test_keep_ratio_follows_algorithm_1():
    # R(T) = 1 - min(T / T_k, 1) tau after epoch T; epoch T trains with R(T - 1)
    assert keep_ratio(1, tau=0.4, num_gradual=10) == 1.0
    assert keep_ratio(6, tau=0.4, num_gradual=10) == pytest.approx(0.8)  # 1 - 5/10 * 0.4
    assert keep_ratio(11, tau=0.4, num_gradual=10) == pytest.approx(0.6)
    assert keep_ratio(30, tau=0.4, num_gradual=10) == pytest.approx(0.6)


def _batch():
    """Labels all 0, two classes. Cross-entropies by hand:
    f: (0, 0) ln 2 = 0.693147; (ln 3, 0) ln 4/3 = 0.287682; (0, ln 3) ln 4 = 1.386294; (ln 3, 0) 0.287682
    g: (0, ln 3) 1.386294; (0, 0) 0.693147; (ln 3, 0) 0.287682; (ln 7, 0) ln 8/7 = 0.133531"""
    logits_f = torch.tensor([[0.0, 0.0], [L3, 0.0], [0.0, L3], [L3, 0.0]], requires_grad=True)
    logits_g = torch.tensor([[0.0, L3], [0.0, 0.0], [L3, 0.0], [math.log(7.0), 0.0]], requires_grad=True)
    return logits_f, logits_g, torch.zeros(4, dtype=torch.long)


def test_each_network_learns_from_the_other_networks_small_loss_picks():
    logits_f, logits_g, labels = _batch()
    out = coteaching_losses(logits_f, logits_g, labels, keep=0.5)  # ceil(0.5 * 4) = 2 each
    assert out.picked_by_f.tolist() == [False, True, False, True]   # f's two smallest: 0.2877 (1), 0.2877 (3)
    assert out.picked_by_g.tolist() == [False, False, True, True]   # g's: 0.1335 (3), 0.2877 (2)
    assert out.loss_f.item() == pytest.approx((1.386294 + 0.287682) / 2, abs=1e-6)  # f on g's picks {2, 3}
    assert out.loss_g.item() == pytest.approx((0.693147 + 0.133531) / 2, abs=1e-6)  # g on f's picks {1, 3}
    assert out.ce_f.tolist() == pytest.approx([0.693147, 0.287682, 1.386294, 0.287682], abs=1e-6)
    (out.loss_f + out.loss_g).backward()
    # f's gradient reaches only the samples g picked, and g's only those f picked
    assert logits_f.grad[:2].abs().sum() == 0 and logits_f.grad[2:].abs().sum() > 0
    assert logits_g.grad[[0, 2]].abs().sum() == 0 and logits_g.grad[[1, 3]].abs().sum() > 0


def test_kept_count_is_the_smallest_set_covering_the_fraction():
    logits_f, logits_g, labels = _batch()
    assert int(coteaching_losses(logits_f, logits_g, labels, keep=0.6).picked_by_f.sum()) == 3  # ceil(2.4)
    assert int(coteaching_losses(logits_f, logits_g, labels, keep=0.75).picked_by_f.sum()) == 3
    assert int(coteaching_losses(logits_f, logits_g, labels, keep=0.1).picked_by_f.sum()) == 1
    everything = coteaching_losses(logits_f, logits_g, labels, keep=1.0)
    assert everything.loss_f.item() == pytest.approx((0.693147 + 2 * 0.287682 + 1.386294) / 4, abs=1e-6)


def _method(backbone, **options) -> CoTeaching:
    return CoTeaching(backbone=backbone, num_classes=7, num_train=10, image_size=32,
                      options=CoTeachingOptions(**options), augment=Augmenter(AugmentConfig(), image_size=32))


def test_the_peer_network_comes_from_the_backbone_factory(tmp_path):
    torch.manual_seed(0)
    source = create_backbone("resnet_tiny")
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    pretrained = _method(create_backbone("resnet_tiny", pretrained=tmp_path / "weights.pt"))
    assert pretrained.backbone2.spec == pretrained.backbone.spec
    first, second = pretrained.backbone.state_dict(), pretrained.backbone2.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)  # both from the run's pretrained weights
    assert pretrained.backbone2.conv1.weight.data_ptr() != pretrained.backbone.conv1.weight.data_ptr()
    assert not torch.equal(pretrained.fc.weight, pretrained.fc2.weight)  # the classifiers differ

    fresh = _method(create_backbone("resnet_tiny", pretrained=tmp_path / "weights.pt"), second_pretrained=False)
    assert not torch.equal(fresh.backbone.conv1.weight, fresh.backbone2.conv1.weight)
    assert {k for k in fresh.state_dict() if k.startswith("backbone2.")}  # saved with the method


def test_forget_rate_defaults_to_the_runs_noise_rate_and_predict_options():
    method = _method(create_backbone("resnet_tiny"), predict_with="mean")
    method.setup(TrainingSetup(labels=torch.zeros(10, dtype=torch.long), columns={}, class_names=tuple("abcdefg"),
                               epochs=2, steps_per_epoch=1, device=torch.device("cpu"), label_noise_rate=0.3))
    assert method.tau == 0.3
    assert _method(create_backbone("resnet_tiny"), forget_rate=0.1).tau == 0.1
    # with two identical networks the mean of their probabilities is either one's
    method.backbone2.load_state_dict(method.backbone.state_dict())
    method.fc2.load_state_dict(method.fc.state_dict())
    method.eval()
    x = torch.rand(3, 3, 32, 32)
    assert torch.allclose(method.predict(x).softmax(1), method(x).softmax(1), atol=1e-6)
    with pytest.raises(ValueError, match="predict_with"):
        CoTeachingOptions(predict_with="second")
