"""Mirror alignment of class activation maps: where each cell of a mirrored-back map looks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from noisyfer.models import align_mirrored, create_backbone, flip_shift


@pytest.mark.parametrize("image_side, map_side, reduction, shift", [
    (32, 2, 16, 1),    # offset 31 - 16 = 15 px -> 0.94 cell
    (48, 3, 16, 1),    # 47 - 32 = 15
    (224, 7, 32, 1),   # ResNet-18 at 224 px: 223 - 192 = 31
    (33, 3, 16, 0),    # symmetric grid: 32 - 32 = 0
    (100, 4, 32, 0),   # 99 - 96 = 3 px -> 0.09 cell
    (112, 4, 32, 0),   # 111 - 96 = 15 px -> 0.47 cell, rounds to 0
    (16, 1, 16, 1),    # 15 px on a one-cell map
])
def test_flip_shift_by_hand(image_side, map_side, reduction, shift):
    assert flip_shift(image_side, map_side, reduction) == shift


def test_flip_shift_rejects_nonpositive_sizes():
    with pytest.raises(ValueError, match="positive sizes"):
        flip_shift(32, 0, 16)


def test_align_mirrored_drops_the_unpaired_columns():
    original = torch.arange(8.0).reshape(1, 1, 2, 4)
    mirrored_back = -torch.arange(8.0).reshape(1, 1, 2, 4)
    a, b = align_mirrored(original, mirrored_back, 1)
    assert a.tolist() == [[[[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]]]
    assert b.tolist() == [[[[-0.0, -1.0, -2.0], [-4.0, -5.0, -6.0]]]]
    a, b = align_mirrored(original, mirrored_back, -2)
    assert a.tolist() == [[[[0.0, 1.0], [4.0, 5.0]]]] and b.tolist() == [[[[-2.0, -3.0], [-6.0, -7.0]]]]
    assert align_mirrored(original, mirrored_back, 0) == (original, mirrored_back)
    with pytest.raises(ValueError, match="leaves no column"):
        align_mirrored(original, mirrored_back, 4)


def _mirror_symmetric_backbone():
    """resnet_tiny with every kernel made left-right symmetric: a network that commutes with the
    mirror, up to where its grid puts the cells."""
    torch.manual_seed(0)
    net = create_backbone("resnet_tiny").eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.copy_((module.weight + module.weight.flip(-1)) / 2)
    return net


def _smooth_images(side: int) -> torch.Tensor:
    torch.manual_seed(1)
    return F.interpolate(torch.rand(4, 3, 4, 4), size=(side, side), mode="bilinear", align_corners=True)


def test_on_a_symmetric_grid_index_reversal_is_exact():
    net = _mirror_symmetric_backbone()
    x = _smooth_images(33)
    with torch.no_grad():
        fmap, mirrored = net(x).feature_map, net(x.flip(-1)).feature_map
    assert flip_shift(33, fmap.shape[-1], net.reduction) == 0
    assert torch.allclose(fmap, mirrored.flip(-1), atol=1e-5)


def test_on_an_even_grid_the_shifted_pairing_looks_at_the_same_pixels():
    net = _mirror_symmetric_backbone()
    x = _smooth_images(32)
    with torch.no_grad():
        fmap, mirrored = net(x).feature_map, net(x.flip(-1)).feature_map
    shift = flip_shift(32, fmap.shape[-1], net.reduction)
    assert shift == 1
    by_index = (fmap - mirrored.flip(-1)).pow(2).mean()
    a, b = align_mirrored(fmap, mirrored.flip(-1), shift)
    by_grid = (a - b).pow(2).mean()
    # pixel 16 against pixel 15 (grid) instead of 0 against 15 and 16 against 31 (index)
    assert by_grid < 0.25 * by_index
