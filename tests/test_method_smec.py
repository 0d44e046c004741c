"""SMEC: split, merge, flip bookkeeping and the consistency loss, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.engine.loader import TensorLoader
from noisyfer.errors import UserError
from noisyfer.methods.smec import (
    SMECOptions,
    consistency_weight_for_noise,
    merge_tiles,
    parse_split,
    split_merge_consistency,
    split_tiles,
)
from noisyfer.models import cam, create_backbone
from tests.conftest import make_tiny_split

# 0  1  2  3
# 4  5  6  7
# 8  9 10 11
# 12 13 14 15
IMAGE = torch.arange(16.0).reshape(1, 1, 4, 4)


def test_width_split_of_a_4x4_image_gives_left_and_right_halves():
    left, right = split_tiles(IMAGE, *parse_split("width"))
    assert left[0].tolist() == [[0, 1], [4, 5], [8, 9], [12, 13]]
    assert right[0].tolist() == [[2, 3], [6, 7], [10, 11], [14, 15]]
    top, bottom = split_tiles(IMAGE, *parse_split("height"))
    assert top[0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and bottom[0].tolist() == [[8, 9, 10, 11], [12, 13, 14, 15]]
    quarters = split_tiles(IMAGE, *parse_split("2x2"))
    assert [q[0].tolist() for q in quarters] == [[[0, 1], [4, 5]], [[2, 3], [6, 7]], [[8, 9], [12, 13]],
                                                 [[10, 11], [14, 15]]]
    # a batch of two keeps each image's tiles together: image 0's left, right, then image 1's
    pair = split_tiles(torch.cat([IMAGE, IMAGE + 100]), 1, 2)
    assert pair[:, 0, 0, 0].tolist() == [0, 2, 100, 102]
    with pytest.raises(ValueError, match="3x1 equal tiles"):
        split_tiles(IMAGE, 3, 1)


def test_flip_bookkeeping_split_of_the_mirror_then_merge_and_mirror_back():
    mirrored = IMAGE.flip(-1)
    first, second = split_tiles(mirrored, 1, 2)
    # the mirrored image's left tile is the right half of the original, mirrored
    assert first[0].tolist() == [[3, 2], [7, 6], [11, 10], [15, 14]]
    assert torch.equal(first, IMAGE[..., 2:].flip(-1)[0]) and torch.equal(second, IMAGE[..., :2].flip(-1)[0])
    for split in ("width", "height", "2x2", "4x4"):
        rows, cols = parse_split(split)
        back = merge_tiles(split_tiles(mirrored, rows, cols), rows, cols).flip(-1)
        assert torch.equal(back, IMAGE), split


def test_merge_of_half_cams_to_the_full_cam_size():
    # two half maps 2x1 -> merged 2x2, no resizing
    halves = torch.tensor([[[[1.0], [2.0]]], [[[3.0], [4.0]]]])
    assert merge_tiles(halves, 1, 2, size=(2, 2))[0, 0].tolist() == [[1, 3], [2, 4]]
    # two half maps 2x2 -> merged [[1,3,2,4],[5,7,6,8]] (2x4) -> resized to 2x2: bilinear with scale 2
    # samples each output column at input x = 2j + 0.5, the mean of columns 2j and 2j+1
    halves = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]], [[[2.0, 4.0], [6.0, 8.0]]]])
    assert merge_tiles(halves, 1, 2)[0, 0].tolist() == [[1, 3, 2, 4], [5, 7, 6, 8]]
    assert merge_tiles(halves, 1, 2, size=(2, 2))[0, 0].tolist() == [[2, 3], [6, 7]]
    # a 48 px resnet_small case: 1x4 merged row (0, 4, 8, 12) -> 3 columns sampled at x = 1/6, 3/2, 17/6
    # of a linear ramp 4x -> (2/3, 6, 34/3)
    ramp = torch.tensor([[[[0.0, 4.0]]], [[[8.0, 12.0]]]])
    assert merge_tiles(ramp, 1, 2, size=(1, 3))[0, 0, 0].tolist() == pytest.approx([2 / 3, 6.0, 34 / 3])


def test_consistency_loss_eq5_on_a_hand_made_example():
    original = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # the merged map of the mirrored image, mirrored back, is exactly the original: no loss
    assert split_merge_consistency(original, original.flip(-1)).item() == 0.0
    # against zeros: mse = (1 + 4 + 9 + 16) / 4 = 7.5; the literal norm = sqrt(30) / (1 * 1 * 2 * 2) = 1.3693064
    zeros = torch.zeros_like(original)
    assert split_merge_consistency(original, zeros).item() == pytest.approx(7.5)
    assert split_merge_consistency(original, zeros, distance="norm").item() == pytest.approx(math.sqrt(30) / 4)
    # not mirrored back: [[1,2],[3,4]] vs flip([[1,2],[3,4]]) = [[2,1],[4,3]] -> squared gaps all 1
    assert split_merge_consistency(original, original).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="CAM shapes differ"):
        split_merge_consistency(original, torch.zeros(1, 1, 2, 3))


def test_consistency_weight_by_noise_level():
    assert [consistency_weight_for_noise(r) for r in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)] == [2, 3, 3, 3, 3, 5, 5]
    # unset: from the run's measured label-noise rate (labels as given -> the paper's clean weight)
    assert [SMECOptions().resolved_weight(r) for r in (0.0, 0.38, 0.55)] == [2.0, 3.0, 5.0]
    assert SMECOptions(noise_level=0.0).resolved_weight(0.5) == 2.0
    assert SMECOptions(consistency_weight=1.5).resolved_weight(0.5) == 1.5
    with pytest.raises(ValueError, match="not both"):
        SMECOptions(consistency_weight=1.0, noise_level=0.3)


@pytest.mark.parametrize("bad", [dict(split="diagonal"), dict(split="1x1"), dict(noise_level=1.0),
                                 dict(distance="l1"), dict(elr_beta=1.0), dict(consistency_weight=-1.0)])
def test_options_are_validated(bad):
    with pytest.raises(ValueError):
        SMECOptions(**bad)


def test_training_takes_the_weight_from_the_realized_noise_rate(tiny_overrides):
    import json

    import noisyfer
    from noisyfer.config import config_from_args

    result = noisyfer.train(config_from_args(None, tiny_overrides + [
        "method=smec", "train.epochs=1", "noise.kind=symmetric", "noise.rate=0.5", "noise.exact=true"]))
    labels = json.loads((result.run_dir / "train_labels.json").read_text())
    assert labels["realized_rate"] == pytest.approx(0.5, abs=0.01)
    row = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert row["consistency_weight"] == 5.0


def _smec(data, **options):
    torch.manual_seed(0)
    size = data.images.shape[1]
    # no random view: the training view is the normalised image, so the step can be recomputed by hand
    augment = Augmenter(AugmentConfig(hflip=0.0, crop_padding=0.0, erasing=0.0), image_size=size)
    return create_method("smec", backbone=create_backbone("resnet_tiny"), num_classes=data.num_classes,
                         num_train=len(data), options=SMECOptions(**options), image_size=size, augment=augment)


@pytest.mark.parametrize("alignment", ["grid", "index"])
def test_training_step_wires_mirror_split_merge_and_elr(alignment):
    data = make_tiny_split(32, size=32)
    method = _smec(data, noise_level=0.5, elr_lambda=3.0, flip_alignment=alignment)
    assert method.consistency_weight == 5.0
    method.train()
    batch = TensorLoader(data, batch_size=8, device=torch.device("cpu")).batch(torch.arange(8))
    out = method.training_step(batch, epoch=1)
    with torch.no_grad():  # training mode: batch-norm uses the batch's statistics, so this is the same forward
        x = method.augment.normalize(batch.images)
        original = cam(method.backbone(x).feature_map, method.fc.weight)
        # both halves in one forward (one batch-norm batch), as the method does
        halves = cam(method.backbone(torch.cat([x.flip(-1)[..., :16], x.flip(-1)[..., 16:]])).feature_map,
                     method.fc.weight)
        tiles = halves[:8], halves[8:]
    # resnet_tiny on 32 px: whole image 2x2 map, 32x16 halves 2x1 each -> side by side, mirrored back
    assert original.shape[-2:] == (2, 2) and tiles[0].shape[-2:] == (2, 1)
    mirrored_back = torch.cat(tiles, dim=3).flip(-1)
    if alignment == "grid":
        # cells at pixels 0 and 16; mirrored back, the merged cells sit at 15 and 31: its column 0
        # pairs with the original's column 1, and the original's column 0 has no partner
        expected = ((original[..., 1:] - mirrored_back[..., :1]) ** 2).mean()
    else:
        expected = ((original - mirrored_back) ** 2).mean()
    assert out.logs["consistency"].item() == pytest.approx(expected.item(), rel=1e-4)
    # ELR's targets moved for the batch only: t = 0.3 * p / sum(p) from zero
    probs = out.logits.detach().softmax(1).clamp(1e-4, 1 - 1e-4)
    assert torch.allclose(method.elr.targets[:8], 0.3 * probs / probs.sum(1, keepdim=True), atol=1e-6)
    assert torch.all(method.elr.targets[8:] == 0)
    ce = torch.nn.functional.cross_entropy(out.logits.detach(), batch.labels)
    assert out.loss.item() == pytest.approx((ce + out.logs["elr"] + 5.0 * out.logs["consistency"]).item(), rel=1e-5)


def test_split_must_divide_the_image():
    with pytest.raises(UserError, match="split=4x4 needs an image side divisible by 4"):
        _smec(make_tiny_split(8, size=34), split="4x4")


def _bn_buffers(module):
    return {name: buf.clone() for name, buf in module.named_buffers() if "running" in name or "num_batches" in name}


@pytest.mark.parametrize("bn_statistics", ["whole", "all"])
def test_half_image_forward_leaves_the_running_statistics_to_the_whole_image(bn_statistics):
    import copy

    data = make_tiny_split(16, size=32)
    method = _smec(data, noise_level=0.4, bn_statistics=bn_statistics)
    method.train()
    reference = copy.deepcopy(method.backbone)
    batch = TensorLoader(data, batch_size=8, device=torch.device("cpu")).batch(torch.arange(8))
    method.training_step(batch, epoch=1)
    with torch.no_grad():  # the whole image alone, in training mode: one running-statistics update
        reference(method.augment.normalize(batch.images))
    expected, got = _bn_buffers(reference), _bn_buffers(method.backbone)
    assert expected.keys() == got.keys() and len(got) > 0
    same = all(torch.allclose(got[k].float(), expected[k].float(), atol=1e-6) for k in got)
    if bn_statistics == "whole":
        assert same  # half faces leave no trace in what test time uses
        assert all(int(got[k]) == 1 for k in got if k.endswith("num_batches_tracked"))
    else:
        assert not same  # the old behaviour: the halves' forward moved them a second time
        assert all(int(got[k]) == 2 for k in got if k.endswith("num_batches_tracked"))


def test_half_image_forward_still_normalises_with_the_halves_batch_statistics():
    from noisyfer.models import running_stats_frozen

    net = create_backbone("resnet_tiny").train()
    x = torch.randn(4, 3, 32, 16) * 3 + 2
    with torch.no_grad():
        free = net(x).feature_map
        before = _bn_buffers(net)
        with running_stats_frozen(net):
            frozen = net(x).feature_map
    # the same training-mode (batch-statistics) forward, and the buffers untouched by the second one
    assert torch.allclose(free, frozen, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in _bn_buffers(net).items())
    assert all(m.track_running_stats for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_elr_lambda_readings():
    # default: ELR keeps its own weight (3), Eq. 6's lambda follows the noise level
    assert SMECOptions().resolved_elr_lambda(5.0) == 3.0
    # the literal single-symbol reading: Eq. 4's lambda is Eq. 6's
    shared = SMECOptions(elr_lambda="shared")
    assert [shared.resolved_elr_lambda(shared.resolved_weight(r)) for r in (0.0, 0.4, 0.55)] == [2.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="'shared'"):
        SMECOptions(elr_lambda="same")
    with pytest.raises(ValueError, match="bn_statistics"):
        SMECOptions(bn_statistics="tiles")
    data = make_tiny_split(16, size=32)
    method = _smec(data, noise_level=0.55, elr_lambda="shared")
    assert method.consistency_weight == 5.0 and method.elr.lam == 5.0
