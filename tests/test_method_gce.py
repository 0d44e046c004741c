"""GCE: the L_q loss, its gradient and the truncated loss with pruning against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.methods.base import Batch, TrainingSetup
from noisyfer.methods.gce import GCE, GCEOptions, lq_loss
from noisyfer.models import create_backbone

# logits (ln 3, 0) -> p = (0.75, 0.25)
LOGITS = torch.tensor([[math.log(3.0), 0.0]])


@pytest.mark.parametrize(("q", "expected"), [
    (1.0, 0.25),            # 1 - 0.75
    (0.5, 0.2679492),       # (1 - sqrt(0.75)) / 0.5 = (1 - 0.8660254) / 0.5
    (0.7, 0.2605660),       # 0.75 ** 0.7 = exp(0.7 ln 0.75) = 0.8176038; (1 - 0.8176038) / 0.7
])
def test_lq_by_hand(q, expected):
    assert lq_loss(LOGITS, torch.tensor([0]), q=q).item() == pytest.approx(expected, abs=1e-6)


def test_small_q_tends_to_cross_entropy_and_label_selects_the_probability():
    # q -> 0: (1 - exp(q ln p)) / q -> -ln p = ln(4/3) = 0.2876821
    assert lq_loss(LOGITS, torch.tensor([0]), q=1e-5).item() == pytest.approx(0.2876821, abs=1e-5)
    # the other label: p = 0.25, q = 1: 0.75
    assert lq_loss(LOGITS, torch.tensor([1]), q=1.0).item() == pytest.approx(0.75, abs=1e-6)


def test_gradient_is_cross_entropy_weighted_by_p_to_the_q():
    # d L_q / d z = p_y ** q * d CE / d z (the paper's Eq. 7): p_y ** q = 0.75 ** 0.7 = 0.8176038
    z = LOGITS.clone().requires_grad_(True)
    lq_loss(z, torch.tensor([0]), q=0.7).sum().backward()
    # d CE / d z = p - onehot = (-0.25, 0.25)
    assert z.grad[0].tolist() == pytest.approx([-0.25 * 0.8176038, 0.25 * 0.8176038], abs=1e-6)


def _constant_method(**options) -> GCE:
    """Logits fixed to the fc bias (ln 3, 0, ..., 0) for every image: p_0 = 3/9 = 1/3, p_c = 1/9."""
    method = GCE(backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=4, image_size=32,
                 options=GCEOptions(**options), augment=Augmenter(AugmentConfig(), image_size=32))
    with torch.no_grad():
        method.fc.weight.zero_()
        method.fc.bias.zero_()
        method.fc.bias[0] = math.log(3.0)
    return method


def test_truncated_loss_prunes_at_the_scheduled_epochs():
    labels = torch.tensor([0, 0, 1, 2])
    images = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    method = _constant_method(truncate=True, k=0.3, prune_start=3, prune_every=2)

    def fetch(indices):
        return Batch(images=images[indices], labels=labels[indices], indices=indices)

    method.setup(TrainingSetup(labels=labels, columns={}, class_names=tuple("abcdefg"), epochs=6, steps_per_epoch=1,
                               device=torch.device("cpu"), fetch=fetch))
    batch = Batch(images=images, labels=labels, indices=torch.arange(4))
    method.train()
    for epoch in (1, 2, 4):  # no pruning yet (epoch 4 is between prunings): every sample weighs 1
        method.on_epoch_start(epoch)
    # L_q(1/3) = (1 - (1/3) ** 0.7) / 0.7 = (1 - 0.4634531) / 0.7 = 0.7664813; L_q(1/9) = 1.1217171
    assert method.training_step(batch, epoch=2).loss.item() == pytest.approx((2 * 0.7664813 + 2 * 1.1217171) / 4,
                                                                             abs=1e-5)
    method.on_epoch_start(3)  # prune: p_y = 1/3 > 0.3 kept for labels 0; 1/9 <= 0.3 pruned
    assert method.state["weight"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert method.training  # pruning left the method in training mode
    out = method.training_step(batch, epoch=3)
    # pruned samples count L_q(k) = (1 - 0.3 ** 0.7) / 0.7 = (1 - 0.4305116) / 0.7 = 0.8135548
    assert out.loss.item() == pytest.approx((2 * 0.7664813 + 2 * 0.8135548) / 4, abs=1e-5)
    assert out.logs["kept"].item() == 0.5
    assert method.epoch_record()["clean_score"].tolist() == [1.0, 1.0, 0.0, 0.0]
    # and no gradient comes from the pruned samples: the bias gradient is that of the two label-0 samples
    method.zero_grad()
    out.loss.backward()
    grad_lq = (1 / 3) ** 0.7 * (torch.tensor([1 / 3] + [1 / 9] * 6) - F.one_hot(torch.tensor(0), 7))  # per sample
    assert torch.allclose(method.fc.bias.grad, 2 * grad_lq / 4, atol=1e-6)


def test_options_are_checked():
    for bad in ({"q": 0.0}, {"q": 1.5}, {"k": 1.0}, {"prune_every": 0}):
        with pytest.raises(ValueError):
            GCEOptions(**bad)
