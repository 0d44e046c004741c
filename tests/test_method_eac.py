"""EAC: the flip attention consistency on hand-made maps, the two views and where gradients go."""

from __future__ import annotations

import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.methods.base import Batch
from noisyfer.methods.eac import EACOptions, flip_attention_consistency
from noisyfer.models import cam, create_backbone


def test_consistency_on_a_hand_made_feature_map():
    # D = 2 channels on a 1 x 2 map. View 1: channel 0 = [1, 2], channel 1 = [0, 1];
    # mirrored view 2: channel 0 = [3, 1], channel 1 = [1, 0]. Classes: w0 = (1, 0), w1 = (1, -1).
    first = torch.tensor([[[[1.0, 2.0]], [[0.0, 1.0]]]])
    second = torch.tensor([[[[3.0, 1.0]], [[1.0, 0.0]]]])
    weight = torch.tensor([[1.0, 0.0], [1.0, -1.0]])
    # CAM1: class 0 = [1, 2], class 1 = [1, 1]; CAM2: class 0 = [3, 1], class 1 = [2, 1]
    # flip(CAM2): class 0 = [1, 3], class 1 = [1, 2]; differences [0, -1], [0, -1] -> mean of squares 2/4
    value = flip_attention_consistency(cam(first, weight), cam(second, weight))
    assert value.item() == pytest.approx(0.5)


def test_mirror_symmetric_maps_are_consistent():
    fmap = torch.randn(3, 4, 5, 6)
    weight = torch.randn(7, 4)
    mirrored = flip_attention_consistency(cam(fmap, weight), cam(fmap.flip(-1), weight))
    assert mirrored.item() == pytest.approx(0.0, abs=1e-6)
    # the unflipped map of an asymmetric input is not
    assert flip_attention_consistency(cam(fmap, weight), cam(fmap, weight)).item() > 0.1


def test_consistency_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="CAM shapes"):
        flip_attention_consistency(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))


def _eac(augment: AugmentConfig, lam: float = 5.0):
    torch.manual_seed(0)
    return create_method("eac", backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=8,
                         options=EACOptions(lam=lam), augment=Augmenter(augment, image_size=32), image_size=32)


def test_views_share_geometry_and_erase_independently():
    images = torch.rand(6, 3, 32, 32)
    plain = _eac(AugmentConfig(erasing=0.0, noise=0.0, rotation=10.0, crop_padding=0.1, hflip=0.5))
    torch.manual_seed(1)
    first, second = plain.views(images)
    # without erasing and noise, view 2 is exactly the mirror of view 1 (same crop, flip and rotation)
    assert torch.equal(second, first.flip(-1))
    assert not torch.equal(first, plain.augment.normalize(images))  # the geometry did change the images
    erased = _eac(AugmentConfig(erasing=1.0, noise=0.0, crop_padding=0.0, hflip=0.0))
    torch.manual_seed(1)
    first, second = erased.views(images)
    # every image erased in both views (erasing writes 0 after normalising), with different rectangles
    assert not torch.equal(second, first.flip(-1))
    assert ((first == 0).all(1).flatten(1).any(1)).all() and ((second == 0).all(1).flatten(1).any(1)).all()


def test_consistency_trains_the_backbone_but_not_the_classifier():
    batch = Batch(images=torch.rand(8, 3, 32, 32), labels=torch.arange(8) % 7, indices=torch.arange(8))
    grads = {}
    for lam in (0.0, 5.0):
        method = _eac(AugmentConfig(), lam=lam)
        method.train()
        torch.manual_seed(3)
        out = method.training_step(batch, epoch=1)
        assert out.loss.item() == pytest.approx((out.logs["ce"] + lam * out.logs["consistency"]).item(), rel=1e-6)
        out.loss.backward()
        grads[lam] = (method.fc.weight.grad.clone(), method.backbone.layer4[0].conv1.weight.grad.clone())
    assert torch.allclose(grads[0.0][0], grads[5.0][0], atol=1e-7)  # classifier: CE only
    assert not torch.allclose(grads[0.0][1], grads[5.0][1])  # backbone: CE + consistency


def test_lam_is_validated():
    with pytest.raises(ValueError, match="lam"):
        EACOptions(lam=-1.0)


def test_consistency_with_a_shift_pairs_columns_by_position():
    # 1 x 3 maps, one class, weight 1: original [1, 2, 3]; mirrored view [5, 4, 9] -> back [9, 4, 5].
    # shift 1: original columns 1, 2 against mirrored-back columns 0, 1: (2-9)^2, (3-4)^2 -> 50 / 2
    original = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    mirrored = torch.tensor([[[[5.0, 4.0, 9.0]]]])
    weight = torch.ones(1, 1)
    assert flip_attention_consistency(cam(original, weight), cam(mirrored, weight), shift=1).item() == 25.0
    # index with index: (1-9)^2, (2-4)^2, (3-5)^2 -> 72 / 3
    assert flip_attention_consistency(cam(original, weight), cam(mirrored, weight)).item() == 24.0


@pytest.mark.parametrize("alignment, shift", [("grid", 1), ("index", 0)])
def test_training_step_pairs_the_cells_that_see_the_same_pixels(alignment, shift):
    method = create_method("eac", backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=8,
                           options=EACOptions(flip_alignment=alignment),
                           augment=Augmenter(AugmentConfig(erasing=0.0, noise=0.0, crop_padding=0.0, hflip=0.0),
                                             image_size=32), image_size=32)
    method.train()
    batch = Batch(images=torch.rand(4, 3, 32, 32), labels=torch.arange(4), indices=torch.arange(4))
    out = method.training_step(batch, epoch=1)
    with torch.no_grad():  # training-mode batch norm over both views, as the method's single forward
        x = method.augment.normalize(batch.images)
        maps = cam(method.backbone(torch.cat([x, x.flip(-1)])).feature_map, method.fc.weight)
    expected = flip_attention_consistency(maps[:4], maps[4:], shift=shift)
    assert out.logs["consistency"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_flip_alignment_is_validated():
    with pytest.raises(ValueError, match="flip_alignment"):
        EACOptions(flip_alignment="nearest")
