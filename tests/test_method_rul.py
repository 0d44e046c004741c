"""RUL / RUL-C: mixing weights, add-up loss, heads sized from the image, state, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.methods.base import Batch, TrainingSetup
from noisyfer.methods.rul import RULOptions, add_up_loss, feature_map_shape, relative_uncertainty_mix
from noisyfer.methods.rul_c import RULCOptions
from noisyfer.models import create_backbone

LN3 = math.log(3.0)


def test_mixing_weights_by_hand():
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    s = torch.tensor([1.0, 3.0, 2.0])
    perm = torch.tensor([1, 2, 0])
    mixed, w_self, w_partner = relative_uncertainty_mix(mu, s, perm)
    # i=0 with 1: 1/4, 3/4 -> [0.25, 1.5]; i=1 with 2: 3/5, 2/5 -> [1.6, 2.8]; i=2 with 0: 2/3, 1/3 -> [3, 8/3]
    assert torch.allclose(w_self, torch.tensor([0.25, 0.6, 2 / 3]))
    assert torch.allclose(w_partner, torch.tensor([0.75, 0.4, 1 / 3]))
    assert torch.allclose(mixed, torch.tensor([[0.25, 1.5], [1.6, 2.8], [3.0, 8 / 3]]))


def test_add_up_loss_by_hand():
    logits = torch.tensor([[LN3, 0.0], [0.0, 0.0]])  # softmax [3/4, 1/4] and [1/2, 1/2]
    loss = add_up_loss(logits, torch.tensor([0, 1]), torch.tensor([1, 1]))
    # 0.5 * mean(ln 4/3, ln 2) + 0.5 * mean(ln 4, ln 2) = 0.25 ln(4/3 * 2 * 4 * 2) = 0.25 ln(64/3)
    assert loss.item() == pytest.approx(0.25 * math.log(64 / 3), rel=1e-6)


class Fixed(nn.Module):
    """A head returning a fixed tensor (whatever the feature map)."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.register_buffer("value", value)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.value


MU = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
LOGVAR = torch.tensor([[0.0, 0.0], [LN3, LN3]])  # s = mean(exp(logvar)) = [1, 3]


def _method(name: str = "rul", num_train: int = 2, **options):
    opts = (RULCOptions if name == "rul_c" else RULOptions)(feature_dim=2, **options)
    torch.manual_seed(0)
    method = create_method(name, backbone=create_backbone("resnet_tiny"), num_classes=2, num_train=num_train,
                           options=opts, image_size=32, augment=Augmenter(AugmentConfig(), image_size=32))
    given = torch.tensor([0, 1] * (num_train // 2))
    method.setup(TrainingSetup(labels=given, columns={}, class_names=("a", "b"), epochs=2, steps_per_epoch=1,
                               device=torch.device("cpu")))
    method.train()
    return method, given


def _fix(method, monkeypatch, perm=(1, 0)):
    method.mean_head = Fixed(MU)
    method.logvar_head = Fixed(LOGVAR)
    with torch.no_grad():
        method.fc.weight.copy_(torch.eye(2))
        if method.fc.bias is not None:
            method.fc.bias.zero_()
    monkeypatch.setattr(torch, "randperm", lambda n, device=None: torch.tensor(perm, device=device))


def _batch(given):
    return Batch(images=torch.rand(2, 3, 32, 32), labels=given, indices=torch.arange(2))


def _expected_rul_loss() -> float:
    # s = [1, 3], perm (1, 0): w = [1/4, 3/4] for both -> z_0 = z_1 = 0.25*[2,0] + 0.75*[0,1] = [0.5, 0.75]
    # fc = identity; labels [0, 1], partners [1, 0]. With A = ln(e^0.5 + e^0.75):
    # CE(z, 0) = A - 0.5, CE(z, 1) = A - 0.75 -> 0.5 * mean(A-0.5, A-0.75) + 0.5 * mean(A-0.75, A-0.5)
    return math.log(math.exp(0.5) + math.exp(0.75)) - 0.625


def test_rul_step_with_fixed_heads_and_permutation(monkeypatch):
    method, given = _method()
    _fix(method, monkeypatch)
    out = method.training_step(_batch(given), epoch=1)
    assert out.loss.item() == pytest.approx(_expected_rul_loss(), rel=1e-6)
    assert torch.allclose(out.logits, MU)  # memorization logits: the mean branch fc(mu)
    assert torch.allclose(method.state["uncertainty"], torch.tensor([1.0, 3.0]))
    record = method.epoch_record()
    # clean_score = m / (s + m) with m = 2: [2/3, 2/5]
    assert torch.allclose(record["clean_score"], torch.tensor([2 / 3, 0.4]))


def test_rul_c_adds_gamma_center_losses(monkeypatch):
    # centers start at 0: L_C(mu) = mean(|[2,0]|^2, |[0,1]|^2) = 2.5; L_C(logvar) = mean(0, 2 ln3^2) = ln3^2
    method, given = _method("rul_c", gamma=0.1)
    _fix(method, monkeypatch)
    out = method.training_step(_batch(given), epoch=1)
    assert out.loss.item() == pytest.approx(_expected_rul_loss() + 0.1 * (2.5 + LN3**2), rel=1e-6)
    method, given = _method("rul_c", gamma=0.1, aux_center=False)
    _fix(method, monkeypatch)
    out = method.training_step(_batch(given), epoch=1)
    assert out.loss.item() == pytest.approx(_expected_rul_loss() + 0.1 * 2.5, rel=1e-6)
    assert "aux_center_loss" not in out.logs


@pytest.mark.parametrize("name, options, has_bias", [
    ("rul", {}, True), ("rul_c", {}, False), ("rul_c", {"classifier_bias": True}, True),
])
def test_rul_c_classifier_is_bias_free_by_default(name, options, has_bias):
    # paper 000, Eq. 2: "this work sets b_j = 0"; RUL's own classifier keeps its bias
    method, _ = _method(name, **options)
    assert (method.fc.bias is not None) == has_bias
    if has_bias:
        torch.nn.init.normal_(method.fc.bias)
    zero_logits = method.fc(torch.zeros(3, 2))
    assert torch.equal(zero_logits, torch.zeros(3, 2)) != has_bias
    assert any(line.strip().startswith("classifier_bias") for line in type(method.options).__doc__.splitlines())


def test_optional_relabeling_uses_the_mean_branch(monkeypatch):
    # fc(mu) = mu: softmax([2,0]) = [0.881, 0.119], softmax([0,1]) = [0.269, 0.731]
    # with the labels swapped to [1, 0] both samples are relabeled (0.76 and 0.46 > 0.2)
    for relabel, expected in ((False, [1, 0]), (True, [0, 1])):
        method, _ = _method(relabel=relabel, relabel_epoch=2)
        _fix(method, monkeypatch)
        swapped = torch.tensor([1, 0])
        method.relabeling.reset(swapped)
        method.on_epoch_start(1)
        method.training_step(_batch(swapped), epoch=1)
        assert method.state["labels"].tolist() == [1, 0]  # before relabel_epoch
        method.training_step(_batch(swapped), epoch=2)
        assert method.state["labels"].tolist() == expected
        logs = method.on_epoch_end(2)
        assert ("relabels_epoch" in logs) == relabel


def test_heads_are_sized_from_the_image_and_the_probe_leaves_the_backbone_alone():
    backbone = create_backbone("resnet_small")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    assert feature_map_shape(backbone, 48) == (256, 3, 3)  # stride 16
    assert backbone.training
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    method = create_method("rul", backbone=backbone, num_classes=7, num_train=4, options=RULOptions(),
                           image_size=48, augment=Augmenter(AugmentConfig(), image_size=48))
    linear = method.mean_head[3]
    assert linear.in_features == 256 * 3 * 3 and linear.out_features == 64


def test_predict_uses_the_mean_branch_only():
    method, _ = _method()
    method.eval()
    x = torch.rand(3, 3, 32, 32)
    expected = method.fc(method.mean_head(method.backbone(x).feature_map))

    class Broken(nn.Module):
        def forward(self, fmap):
            raise AssertionError("the log-variance head must not run at inference")

    method.logvar_head = Broken()
    assert torch.equal(method.predict(x), expected)


def test_classifier_learning_rate_scale():
    method, _ = _method(fc_lr_scale=10.0)
    groups = method.param_groups()
    assert [g.lr_scale for g in groups] == [1.0, 10.0]
    assert {id(p) for p in groups[1].params} == {id(method.fc.weight), id(method.fc.bias)}
    total = sum(len(g.params) for g in groups)
    assert total == len([p for p in method.parameters() if p.requires_grad])


@pytest.mark.parametrize("name", ["rul_sim", "rul_c_sim", "rul_paper", "rul_c_paper"])
def test_configs_resolve(name):
    from pathlib import Path

    from noisyfer.config import config_from_args

    cfg = config_from_args(str(Path(__file__).parents[1] / "configs" / f"{name}.yaml"), [])
    assert cfg.method == name.rsplit("_", 1)[0]
    if name.endswith("paper"):  # RUL's recipe: Adam 2e-4 (classifier 10x), ExponentialLR, batch 64
        assert (cfg.train.lr, cfg.train.schedule, cfg.train.batch_size) == (0.0002, "exponential", 64)
        assert cfg.method_options.fc_lr_scale == 10.0


@pytest.mark.parametrize("relabel", [False, True])
def test_label_history_is_recorded_only_when_rul_relabels(relabel):
    """Without relabeling the labels never move, so reports show relabel figures as not applicable."""
    method, _ = _method(relabel=relabel)
    assert ("labels" in method.epoch_record()) == relabel
    assert {"uncertainty", "clean_score"} <= set(method.epoch_record())
