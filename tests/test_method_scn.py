"""SCN / SCN-C: rank regularization, relabel rule, per-sample label state and counters, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.methods.base import Batch, TrainingSetup
from noisyfer.methods.relabeling import low_importance_mask, relabel_decision
from noisyfer.methods.scn import SCNOptions, rank_regularization
from noisyfer.methods.scn_c import SCNCOptions
from noisyfer.models import create_backbone

# -- pure functions -------------------------------------------------------------------------------


def test_rank_regularization_by_hand():
    # N=4, beta=0.7 -> int(2.8) = 2 in the high group: {0.9, 0.5} mean 0.7; low {0.2, 0.1} mean 0.15
    weights = torch.tensor([0.2, 0.9, 0.5, 0.1], requires_grad=True)
    loss = rank_regularization(weights, beta=0.7, margin=0.6)
    assert loss.item() == pytest.approx(0.6 - 0.55, abs=1e-6)
    loss.backward()
    # d/dw of margin - mean_high + mean_low: -1/2 for the high group, +1/2 for the low group
    assert torch.allclose(weights.grad, torch.tensor([0.5, -0.5, -0.5, 0.5]))
    # the gap 0.55 exceeds margin 0.15: no loss
    assert rank_regularization(weights, beta=0.7, margin=0.15).item() == 0.0


def test_rank_regularization_keeps_both_groups_non_empty():
    # N=2 with beta 0.3 -> int(0.6) = 0 would leave the high group empty; it is clamped to 1
    loss = rank_regularization(torch.tensor([0.8, 0.4]), beta=0.3, margin=1.0)
    assert loss.item() == pytest.approx(1.0 - 0.4, abs=1e-6)


PROBS = torch.tensor([
    [0.60, 0.30, 0.10],  # label 1: 0.6 - 0.3 = 0.30 > 0.2 -> relabel to 0
    [0.40, 0.35, 0.25],  # label 1: 0.05 -> keep
    [0.10, 0.10, 0.80],  # label 2: already the argmax -> keep
    [0.05, 0.70, 0.25],  # label 0: 0.65 -> relabel to 1
])
PROB_LABELS = torch.tensor([1, 1, 2, 0])


def test_relabel_rule_all_samples():
    new, changed = relabel_decision(PROBS, PROB_LABELS, margin=0.2)
    assert new.tolist() == [0, 1, 2, 1]
    assert changed.tolist() == [True, False, False, True]
    # a larger margin keeps sample 0 (0.30 < 0.4) but still relabels sample 3 (0.65)
    new, changed = relabel_decision(PROBS, PROB_LABELS, margin=0.4)
    assert new.tolist() == [1, 1, 2, 1] and changed.tolist() == [False, False, False, True]


def test_relabel_rule_low_importance_group_only():
    # beta 0.5 -> the 2 largest weights (samples 1 and 3) form the high group; low = {0, 2}
    weights = torch.tensor([0.2, 0.9, 0.5, 0.8])
    low = low_importance_mask(weights, beta=0.5)
    assert low.tolist() == [True, False, True, False]
    new, changed = relabel_decision(PROBS, PROB_LABELS, margin=0.2, eligible=low)
    assert new.tolist() == [0, 1, 2, 0]  # sample 3 would be relabeled but is in the high group
    assert changed.tolist() == [True, False, False, False]


def test_low_group_ties_are_split_by_position():
    assert low_importance_mask(torch.full((4,), 0.5), beta=0.5).tolist() == [False, False, True, True]


# -- the method -----------------------------------------------------------------------------------

NUM = 8


def _method(name: str = "scn", **options):
    opts = (SCNCOptions if name == "scn_c" else SCNOptions)(**options)
    torch.manual_seed(0)
    method = create_method(name, backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=NUM,
                           options=opts, image_size=32, augment=Augmenter(AugmentConfig(), image_size=32))
    given = torch.tensor([0, 1, 2, 3, 4, 5, 6, 3])
    method.setup(TrainingSetup(labels=given, columns={}, class_names=tuple("abcdefg"), epochs=2,
                               steps_per_epoch=1, device=torch.device("cpu")))
    method.train()
    return method, given


def _fix_heads(method, weights: list[float], probs: list[float]):
    """Make every sample's attention weight and softmax what the test says (logits = log probs)."""
    logits = torch.log(torch.tensor(probs)).expand(NUM, -1).clone()
    method.heads = lambda features: (torch.tensor(weights), logits)


def _batch(indices, given):
    indices = torch.as_tensor(indices)
    return Batch(images=torch.rand(len(indices), 3, 32, 32), labels=given[indices], indices=indices)


P0 = [0.70, 0.25, 0.01, 0.01, 0.01, 0.01, 0.01]   # argmax class 0
P3 = [0.01, 0.01, 0.01, 0.94, 0.01, 0.01, 0.01]   # argmax class 3


def test_relabeling_starts_at_the_configured_epoch_and_updates_state():
    method, given = _method(relabel_epoch=3, margin2=0.5)
    _fix_heads(method, [0.5] * NUM, P0)
    method.on_epoch_start(2)
    method.training_step(_batch(range(NUM), given), epoch=2)
    assert torch.equal(method.state["labels"], given)  # epoch 2 < relabel_epoch 3: nothing changes
    method.on_epoch_start(3)
    method.training_step(_batch(range(NUM), given), epoch=3)
    # p_max - p_label = 0.70 - 0.25 = 0.45 <= 0.5 keeps class 1; 0.70 - 0.01 = 0.69 relabels classes 2..6
    assert method.state["labels"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert method.state["relabel_count"].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    logs = method.on_epoch_end(3)
    assert logs["relabels_epoch"] == 6 and logs["relabel_returns_total"] == 0
    assert logs["relabeled_samples"] == 6 and logs["labels_changed"] == 6


def test_relabeled_label_is_used_next_time_and_returns_are_counted(monkeypatch):
    method, given = _method(relabel_epoch=1, margin2=0.5)
    _fix_heads(method, [0.5] * NUM, P0)
    method.on_epoch_start(1)
    method.training_step(_batch(range(NUM), given), epoch=1)
    # next epoch the model prefers class 3: every sample not at 3 moves there; samples 3 and 7 were
    # given 3 and relabeled to 0, so moving to 3 is a return; the others never held 3
    _fix_heads(method, [0.5] * NUM, P3)
    seen = {}
    original = torch.nn.functional.cross_entropy

    def spy(logits, labels, **kwargs):
        seen["labels"] = labels.clone()
        return original(logits, labels, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)
    method.on_epoch_start(2)
    method.training_step(_batch(range(NUM), given), epoch=2)
    assert seen["labels"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]  # the loss used the stored labels
    assert method.state["labels"].tolist() == [3] * NUM
    assert method.state["return_count"].tolist() == [0, 0, 0, 1, 0, 0, 0, 1]
    assert method.state["relabel_count"].tolist() == [1, 1, 2, 2, 2, 2, 2, 2]
    logs = method.on_epoch_end(2)
    assert logs["relabels_epoch"] == 8 and logs["relabel_returns_total"] == 2
    assert logs["back_and_forth_samples"] == 2 and logs["labels_changed"] == 6  # samples 3, 7 are back at 3


def test_low_scope_relabels_only_the_low_group_in_the_method():
    method, given = _method(relabel_epoch=1, margin2=0.5, relabel_scope="low", beta=0.5)
    weights = [0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1]  # odd positions are the low group
    _fix_heads(method, weights, P0)
    method.on_epoch_start(1)
    method.training_step(_batch(range(NUM), given), epoch=1)
    # candidates (label not 0 or 1): samples 2..7; of those only the odd ones are low-importance
    assert method.state["labels"].tolist() == [0, 1, 2, 0, 4, 0, 6, 0]


def test_partial_batch_and_epoch_record():
    method, given = _method(relabel_epoch=1, margin2=0.5)
    logits = torch.log(torch.tensor(P0)).expand(3, -1)
    method.heads = lambda features: (torch.tensor([0.25, 0.75, 0.5]), logits)
    method.on_epoch_start(1)
    out = method.training_step(_batch([5, 2, 1], given), epoch=1)
    assert out.logits.shape == (3, 7)
    record = method.epoch_record()
    assert record["labels"].tolist() == [0, 1, 0, 3, 4, 0, 6, 3]  # samples 5 and 2 relabeled to 0
    score = record["clean_score"]
    assert score[5].item() == 0.25 and score[2].item() == 0.75 and score[1].item() == 0.5
    assert torch.isnan(score[[0, 3, 4, 6, 7]]).all()  # never drawn yet


def test_scn_loss_terms_and_rr_switch():
    method, given = _method(relabel_epoch=5, margin1=0.6, beta=0.5)
    weights = [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1]  # gap 0.8 > margin 0.6 -> RR 0
    _fix_heads(method, weights, P0)
    out = method.training_step(_batch(range(NUM), given), epoch=1)
    ce = -sum(math.log(P0[c]) for c in given.tolist()) / NUM
    assert out.loss.item() == pytest.approx(ce, rel=1e-5)
    assert out.logs["rr_loss"].item() == 0.0
    _fix_heads(method, [0.6] * 4 + [0.4] * 4, P0)  # gap 0.2 -> RR = 0.6 - 0.2 = 0.4
    out = method.training_step(_batch(range(NUM), given), epoch=1)
    assert out.loss.item() == pytest.approx(ce + 0.4, rel=1e-5)
    method, given = _method(relabel_epoch=5, rank_regularization=False)
    _fix_heads(method, [0.6] * 4 + [0.4] * 4, P0)
    out = method.training_step(_batch(range(NUM), given), epoch=1)
    assert "rr_loss" not in out.logs and out.loss.item() == pytest.approx(ce, rel=1e-5)


def test_scn_c_adds_gamma_center_loss_without_rr_using_current_labels():
    method, given = _method("scn_c", relabel_epoch=5, gamma=0.5)
    assert method.options.rank_regularization is False
    index = torch.arange(NUM)
    method.state.update("labels", index, torch.full((NUM,), 4))  # pretend every sample was relabeled to 4
    out = method.training_step(_batch(range(NUM), given), epoch=1)
    assert "rr_loss" not in out.logs
    # centers start at 0, so L_C = mean ||x_i||^2; the total is CE + gamma * L_C
    assert out.loss.item() == pytest.approx(out.logs["ce"].item() + 0.5 * out.logs["center_loss"].item(), rel=1e-5)
    centers = method.center_loss.centers
    moved = centers.abs().sum(1) > 0
    assert moved.tolist() == [False, False, False, False, True, False, False]  # only the current label's center


@pytest.mark.parametrize("name, options, has_bias", [
    ("scn", {}, True), ("scn_c", {}, False), ("scn_c", {"classifier_bias": True}, True),
])
def test_scn_c_classifier_is_bias_free_by_default(name, options, has_bias):
    # paper 000, Eq. 2: the softmax loss trained with the center loss has b_j = 0, so a zero feature
    # gets zero logits whatever its attention weight; SCN's own classifier keeps its bias
    method, _ = _method(name, **options)
    assert (method.fc.bias is not None) == has_bias
    if has_bias:
        torch.nn.init.normal_(method.fc.bias)
    _, logits = method.heads(torch.zeros(3, method.backbone.num_features))
    assert torch.equal(logits, torch.zeros(3, 7)) != has_bias
    assert any(line.strip().startswith("classifier_bias") for line in type(method.options).__doc__.splitlines())


def test_options_are_validated():
    with pytest.raises(ValueError, match="relabel_scope"):
        SCNOptions(relabel_scope="high")
    with pytest.raises(ValueError, match="beta"):
        SCNOptions(beta=1.0)
    with pytest.raises(ValueError, match="relabel_epoch"):
        SCNOptions(relabel_epoch=0)
    with pytest.raises(ValueError, match="gamma"):
        SCNCOptions(gamma=-1.0)


@pytest.mark.parametrize("name", ["scn_sim", "scn_c_sim", "scn_paper", "scn_c_paper"])
def test_configs_resolve(name):
    from pathlib import Path

    from noisyfer.config import config_from_args

    cfg = config_from_args(str(Path(__file__).parents[1] / "configs" / f"{name}.yaml"), [])
    assert cfg.method == name.rsplit("_", 1)[0]
    if name.startswith("scn_c"):
        assert cfg.method_options.rank_regularization is False and cfg.method_options.gamma == 0.01
    if name == "scn_c_paper":  # paper 000: batch 1024, lr 0.1, MultiStepLR
        assert (cfg.train.batch_size, cfg.train.lr, cfg.train.schedule) == (1024, 0.1, "multistep")
