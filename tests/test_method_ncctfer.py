"""NCCTFER: thresholds, confident selection, the confident CE and the masked top-k consistency
against numbers worked out by hand; then the wiring of views and heads in the training step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from noisyfer.config import AugmentConfig, config_from_args
from noisyfer.engine.augment import Augmenter
from noisyfer.errors import UserError
from noisyfer.methods.base import Batch
from noisyfer.methods.ncctfer import (NCCTFER, NCCTFEROptions, batch_thresholds, class_thresholds,
                                      confident_cross_entropy, confident_mask, label_margin, masked_consistency,
                                      topk_class_mask)
from noisyfer.models import create_backbone

# Dyadic probabilities, so means and comparisons are exact in float32.
PROBS = torch.tensor([
    [0.75, 0.125, 0.125],   # label 0
    [0.25, 0.5, 0.25],      # label 0
    [0.5, 0.25, 0.25],      # label 0
    [0.125, 0.75, 0.125],   # label 1
    [0.25, 0.5, 0.25],      # label 1
    [0.5, 0.375, 0.125],    # label 2
])
LABELS = torch.tensor([0, 0, 0, 1, 1, 2])


def test_class_thresholds_are_means_over_samples_of_the_class():
    # T_0 = (0.75 + 0.25 + 0.5)/3 = 0.5, T_1 = (0.75 + 0.5)/2 = 0.625, T_2 = 0.125 (its one sample)
    assert class_thresholds(PROBS, LABELS).tolist() == [0.5, 0.625, 0.125]
    # a class absent from the batch has no threshold
    four = torch.cat([PROBS, torch.zeros(6, 1)], dim=1)
    assert torch.isnan(class_thresholds(four, LABELS)[3])


def test_confident_samples_clear_their_class_threshold():
    thresholds = class_thresholds(PROBS, LABELS)
    # p_y = (0.75, 0.25, 0.5, 0.75, 0.5, 0.125) against T_y = (0.5, 0.5, 0.5, 0.625, 0.625, 0.125); ties count
    assert confident_mask(PROBS, LABELS, thresholds).tolist() == [True, False, True, True, False, True]
    assert label_margin(PROBS, LABELS, thresholds).tolist() == [0.25, -0.25, 0.0, 0.125, -0.125, 0.0]


def test_dnfer_batch_thresholds_average_over_all_samples():
    # column means 2.375/6, 2.5/6, 1.125/6: sample 4 (0.5 >= 0.4167) becomes confident, sample 5 (0.125 < 0.1875) not
    thresholds = batch_thresholds(PROBS)
    assert torch.allclose(thresholds, torch.tensor([2.375 / 6, 2.5 / 6, 1.125 / 6]))
    assert confident_mask(PROBS, LABELS, thresholds).tolist() == [True, False, True, True, True, False]


def test_confident_cross_entropy_averages_over_confident_samples_only():
    # logits = log p, so CE_i = -log p_y; confident: -log .75, -log .5, -log .75, -log .125 -> mean 0.8369882
    confident = torch.tensor([True, False, True, True, False, True])
    loss = confident_cross_entropy(PROBS.log(), LABELS, confident)
    assert loss.item() == pytest.approx(0.8369882, abs=1e-6)
    assert confident_cross_entropy(PROBS.log(), LABELS, torch.zeros(6, dtype=torch.bool)).item() == 0.0


def test_topk_masks():
    target = torch.tensor([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]])
    assert topk_class_mask(target, 2).tolist() == [[True, True, False, False], [False, False, True, True]]
    least = [[False, False, True, True], [True, True, False, False]]
    assert topk_class_mask(target, 2, largest=False).tolist() == least
    assert topk_class_mask(target, 4).all()


def test_masked_consistency_by_hand():
    target = torch.tensor([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]])
    strong = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.5, 0.25, 0.125, 0.125]]).log()
    mask = topk_class_mask(target, 2)
    # -(1/2) [ (0.4 + 0.3) log 0.25 + (0.3 + 0.4) log 0.125 ] = 1.2130076
    both = masked_consistency(target, strong, mask, torch.tensor([True, True]))
    assert both.item() == pytest.approx(1.2130076, abs=1e-6)
    # only the second sample non-confident: N in 1/N stays the batch size -> 0.7 * log 8 / 2 = 0.7278045
    second = masked_consistency(target, strong, mask, torch.tensor([False, True]))
    assert second.item() == pytest.approx(0.7 * math.log(8) / 2, abs=1e-6)
    assert masked_consistency(target, strong, mask, torch.tensor([False, False])).item() == 0.0


# -- the method --------------------------------------------------------------------------------

def make_ncctfer(num_train: int = 40, **options) -> NCCTFER:
    torch.manual_seed(0)
    return NCCTFER(backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=num_train,
                   options=NCCTFEROptions(**options), augment=Augmenter(AugmentConfig(), image_size=32),
                   image_size=32)


def make_batch(n: int = 16, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(images=torch.rand(n, 3, 32, 32, generator=g), labels=torch.randint(0, 7, (n,), generator=g),
                 indices=torch.arange(2, 2 + n))


def grad_norm(module: torch.nn.Module) -> float:
    return sum(0.0 if p.grad is None else p.grad.abs().sum().item() for p in module.parameters())


def test_warmup_is_cross_entropy_on_the_weak_view_of_the_positive_head():
    method = make_ncctfer(warmup_epochs=2)
    method.train()
    batch = make_batch()
    torch.manual_seed(5)
    out = method.training_step(batch, epoch=2)
    torch.manual_seed(5)
    expected = F.cross_entropy(method(method.augment.weak(batch.images)), batch.labels)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    out.loss.backward()
    assert grad_norm(method.negative_head) == 0.0 and grad_norm(method.positive_head) > 0


def test_after_warmup_positive_head_learns_confident_and_negative_head_the_rest():
    method = make_ncctfer(warmup_epochs=1)
    method.train()
    batch = make_batch()
    torch.manual_seed(5)
    out = method.training_step(batch, epoch=2)
    # replay: same random state, weak view first, then the strong view
    torch.manual_seed(5)
    weak = method.backbone(method.augment.weak(batch.images)).features
    strong = method.backbone(method.augment.strong(batch.images)).features
    logits = method.positive_head(weak)
    probs = logits.softmax(1)
    confident = confident_mask(probs, batch.labels, class_thresholds(probs, batch.labels))
    assert 0 < confident.sum() < len(batch)
    target = method.negative_head(weak).softmax(1)
    expected_c = masked_consistency(target, method.negative_head(strong).log_softmax(1), topk_class_mask(target, 4),
                                    ~confident)
    expected_s = confident_cross_entropy(logits, batch.labels, confident)
    assert out.logs["loss_s"].item() == pytest.approx(expected_s.item(), rel=1e-5)
    assert out.logs["loss_c"].item() == pytest.approx(expected_c.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx((expected_s + expected_c).item(), rel=1e-5)
    assert out.logs["confident_fraction"].item() == pytest.approx(confident.float().mean().item())
    out.loss.backward()
    assert grad_norm(method.negative_head) > 0 and grad_norm(method.positive_head) > 0


def test_positive_only_variant_skips_the_negative_head():
    method = make_ncctfer(warmup_epochs=0, variant="pc")
    method.train()
    out = method.training_step(make_batch(), epoch=1)
    assert "loss_c" not in out.logs and out.loss.item() == pytest.approx(out.logs["loss_s"].item())
    out.loss.backward()
    assert grad_norm(method.negative_head) == 0.0


def test_single_head_variant_uses_least_probable_classes_of_the_positive_head():
    method = make_ncctfer(warmup_epochs=0, variant="single_head", k=3)
    method.train()
    out = method.training_step(make_batch(), epoch=1)
    out.loss.backward()
    assert grad_norm(method.negative_head) == 0.0 and out.logs["loss_c"].item() > 0


def test_per_sample_margin_is_recorded_for_the_batch_only():
    method = make_ncctfer(num_train=40, warmup_epochs=0)
    method.train()
    batch = make_batch()
    torch.manual_seed(5)
    method.training_step(batch, epoch=1)
    torch.manual_seed(5)
    with torch.no_grad():
        probs = method(method.augment.weak(batch.images)).softmax(1)
    expected = label_margin(probs, batch.labels, class_thresholds(probs, batch.labels))
    score = method.epoch_record()["clean_score"]
    assert torch.allclose(score[batch.indices], expected, atol=1e-6)
    outside = torch.ones(40, dtype=torch.bool)
    outside[batch.indices] = False
    assert torch.isnan(score[outside]).all()


def test_heads_get_the_scaled_learning_rate():
    method = make_ncctfer()
    backbone, heads = method.param_groups()
    assert backbone.lr_scale == 1.0 and heads.lr_scale == 10.0 and heads.lr is None
    assert len(heads.params) == 4
    assert sum(p.numel() for g in (backbone, heads) for p in g.params) == sum(p.numel() for p in method.parameters())


def test_k_larger_than_the_classes_is_a_user_error():
    with pytest.raises(UserError, match="method.k"):
        make_ncctfer(k=8)


@pytest.mark.parametrize("item, field", [("method.k=0", "k"), ("method.variant=both", "variant"),
                                         ("method.threshold=median", "threshold"),
                                         ("method.warmup_epochs=-1", "warmup_epochs")])
def test_bad_options_name_the_field(item, field):
    with pytest.raises(UserError, match=field):
        config_from_args(None, ["method=ncctfer", item])
