from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from noisyfer.config import TrainConfig
from noisyfer.engine.metrics import RunningAgreement, classification_report, confusion_matrix
from noisyfer.engine.optim import Schedule, build_optimizers, lr_factor
from noisyfer.methods import OptimizerSpec, ParamGroup


def test_confusion_and_accuracies_by_hand():
    targets = [0, 0, 0, 1, 1, 2]
    preds = [0, 1, 0, 1, 0, 2]
    m = confusion_matrix(targets, preds, 4)
    assert m.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    r = classification_report(targets, preds, 4)
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.per_class_accuracy == [pytest.approx(2 / 3), 0.5, 1.0, None]  # class 3 absent: no accuracy
    assert r.balanced_accuracy == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)


def test_running_agreement_memorization_by_hand():
    given = torch.tensor([0, 1, 2, 2])
    true = torch.tensor([0, 1, 1, 0])  # samples 2 and 3 are mislabeled
    agree = RunningAgreement(given=given, true=true)
    logits = torch.eye(3)[torch.tensor([0, 2, 2, 0])] * 5  # predictions 0, 2, 2, 0
    agree.update(logits[:2], torch.tensor([0, 1]))
    agree.update(logits[2:], torch.tensor([2, 3]))
    out = agree.compute()
    assert out["train_acc_given"] == pytest.approx(2 / 4)  # samples 0 and 2
    assert out["train_acc_true"] == pytest.approx(2 / 4)  # samples 0 and 3
    assert out["noisy_memorized"] == pytest.approx(1 / 2)  # sample 2 predicts its wrong label
    assert out["noisy_corrected"] == pytest.approx(1 / 2)  # sample 3 predicts its true label


@pytest.mark.parametrize("schedule, epoch, expected", [
    ("constant", 5.5, 1.0),
    ("exponential", 0.0, 1.0),
    ("exponential", 2.99, 0.9 ** 2),
    ("exponential", 3.0, 0.9 ** 3),
    ("multistep", 4.5, 0.1),
    ("multistep", 6.0, 0.01),
    ("cosine", 5.0, 0.5),
    ("cosine", 10.0, 0.0),
])
def test_lr_factor_by_hand(schedule, epoch, expected):
    gamma = 0.1 if schedule == "multistep" else 0.9
    cfg = TrainConfig(schedule=schedule, epochs=10, gamma=gamma, milestones=[4, 6])
    assert lr_factor(epoch, cfg) == pytest.approx(expected, abs=1e-9)


def test_warmup_is_linear_then_hands_over():
    cfg = TrainConfig(schedule="cosine", epochs=11, warmup_epochs=1.0)
    assert lr_factor(0.5, cfg) == pytest.approx(0.5)
    assert lr_factor(1.0, cfg) == pytest.approx(1.0)
    assert lr_factor(6.0, cfg) == pytest.approx(0.5)


def test_groups_with_own_lr_and_second_optimizer():
    a, b, c, d = (torch.nn.Parameter(torch.zeros(2)) for _ in range(4))
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    cfg = TrainConfig(lr=0.1, optimizer="adam", schedule="exponential", gamma=0.5, momentum=0.9, weight_decay=1e-4)
    sgd = OptimizerSpec("sgd", {"momentum": 0.0, "nesterov": False})
    opts = build_optimizers([ParamGroup([a, frozen]), ParamGroup([b], lr_scale=10.0),
                             ParamGroup([c], lr=10.0, weight_decay=0.0, optimizer=sgd), ParamGroup([frozen]),
                             ParamGroup([d], lr=10.0, weight_decay=0.0, optimizer=OptimizerSpec("sgd", {}))], cfg)
    assert [type(o).__name__ for o in opts] == ["Adam", "SGD", "SGD"]  # one per distinct spec
    assert [len(g["params"]) for g in opts[0].param_groups] == [1, 1]  # the frozen parameter is left out
    assert [g["weight_decay"] for g in opts[0].param_groups] == [1e-4, 1e-4]
    assert opts[1].param_groups[0]["momentum"] == 0.0 and opts[1].param_groups[0]["weight_decay"] == 0.0
    assert opts[2].param_groups[0]["momentum"] == 0.9  # the run's train.momentum unless the spec says
    with pytest.raises(TypeError, match="ParamGroup"):
        build_optimizers([{"params": [a]}], cfg)
    with pytest.raises(TypeError, match="invalid settings"):
        build_optimizers([ParamGroup([a], optimizer=OptimizerSpec("adam", {"momentum": 0.5}))], cfg)
    with pytest.raises(ValueError, match="not both"):
        ParamGroup([a], lr=1.0, lr_scale=2.0)
    sched = Schedule(opts, cfg, steps_per_epoch=4)
    base = sched.set_step(epoch=3, step=0)  # two whole epochs done: factor 0.25
    assert base == pytest.approx(0.025)
    assert [g["lr"] for g in opts[0].param_groups] == pytest.approx([0.025, 0.25])
    assert opts[1].param_groups[0]["lr"] == pytest.approx(2.5)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_optimizer_is_the_default_and_updates_as_the_per_parameter_loop(name):
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(3)]
    results = {}
    for fused in (True, False):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        cfg = TrainConfig(lr=0.05, optimizer=name, weight_decay=1e-2, momentum=0.9, fused_optimizer=fused)
        (opt,) = build_optimizers([ParamGroup(params)], cfg)
        assert bool(opt.defaults.get("fused")) is fused
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
        results[fused] = [p.detach().clone() for p in params]
    for fused, loop in zip(results[True], results[False]):
        assert torch.allclose(fused, loop, atol=1e-6)
        assert not torch.equal(fused, start[0] if fused.shape == start[0].shape else start[1])  # it moved


def test_a_second_optimizer_asking_for_foreach_is_not_fused():
    a = torch.nn.Parameter(torch.zeros(2))
    (opt,) = build_optimizers([ParamGroup([a], optimizer=OptimizerSpec("adam", {"foreach": True}))],
                              TrainConfig(lr=0.1))
    assert opt.defaults["foreach"] is True and not opt.defaults.get("fused")


def test_sgd_is_not_fused():
    a = torch.nn.Parameter(torch.zeros(2))
    (opt,) = build_optimizers([ParamGroup([a])], TrainConfig(lr=0.1, optimizer="sgd", momentum=0.9))
    assert not opt.defaults.get("fused")
