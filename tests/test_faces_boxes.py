"""Batched NMS against hand-computed cases and a plain greedy loop; MTCNN's tiled pyramid is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisyfer.faces.boxes import batched_nms, pairwise_overlap, regress_boxes, square_boxes
from noisyfer.faces.mtcnn import pyramid_layout, pyramid_levels, pyramid_scales, tile_pyramid
from noisyfer.faces.mtcnn_nets import PNet


def nms(boxes, scores, groups=None, threshold=0.5, mode="union"):
    boxes, scores = torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32)
    groups = torch.zeros(len(scores), dtype=torch.long) if groups is None else torch.tensor(groups)
    return batched_nms(boxes, scores, groups, threshold=threshold, mode=mode).tolist()


def test_overlap_hand_computed():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[1.0, 0, 11, 10], [5, 0, 15, 10], [2, 2, 6, 6], [20, 20, 30, 30]])
    np.testing.assert_allclose(pairwise_overlap(a, b)[0], [90 / 110, 50 / 150, 16 / 100, 0], rtol=1e-6)
    np.testing.assert_allclose(pairwise_overlap(a, b, mode="min")[0], [90 / 100, 50 / 100, 1, 0], rtol=1e-6)


def test_nms_hand_computed():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [5, 0, 15, 10]]
    # A (.9) keeps; D (.85) overlaps A by 1/3 -> kept; B (.8) overlaps A by 0.82 -> suppressed; C alone
    assert nms(boxes, [0.9, 0.8, 0.7, 0.85]) == [0, 3, 2]
    assert nms(boxes, [0.9, 0.8, 0.7, 0.85], threshold=0.9) == [0, 3, 1, 2]


def test_nms_suppressed_box_suppresses_nothing():
    # B overlaps A and C by 70/130 > 0.5, A and C overlap by 40/160: greedy keeps A and C
    assert nms([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], [0.9, 0.8, 0.7]) == [0, 2]


def test_nms_groups_and_min_mode():
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [2, 2, 6, 6]]
    assert nms(boxes, [0.5, 0.9, 0.7], groups=[0, 0, 1]) == [1, 2]  # 0 is a copy of 1 in its group
    assert nms(boxes, [0.5, 0.9, 0.7], groups=[0, 1, 1]) == [1, 2, 0]  # copies in other groups stay
    assert nms([[0, 0, 10, 10], [2, 2, 6, 6]], [0.6, 0.9]) == [1, 0]  # IoU 0.16
    assert nms([[0, 0, 10, 10], [2, 2, 6, 6]], [0.6, 0.9], mode="min") == [1]  # inside: 16/16
    assert nms(np.zeros((0, 4)), []) == []


def greedy(boxes, scores, groups, threshold):
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if all(groups[j] != groups[i] or pairwise_overlap(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= threshold
               for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(3))
def test_nms_equals_greedy_loop(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 60, (120, 2))
    wh = rng.uniform(5, 30, (120, 2))
    boxes = torch.tensor(np.concatenate([xy, xy + wh], 1), dtype=torch.float32)
    scores = torch.tensor(rng.permutation(120) / 120.0, dtype=torch.float32)  # distinct
    groups = torch.tensor(rng.integers(0, 4, 120))
    assert batched_nms(boxes, scores, groups, threshold=0.4).tolist() == greedy(boxes, scores, groups, 0.4)


def test_regress_and_square():
    boxes = torch.tensor([[10.0, 20, 30, 60]])  # 20 wide, 40 high
    np.testing.assert_allclose(regress_boxes(boxes, torch.tensor([[0.1, -0.1, 0.5, 0.0]])), [[12, 16, 40, 60]])
    np.testing.assert_allclose(square_boxes(boxes), [[0, 20, 40, 60]])


def test_pyramid_scales_and_layout():
    scales = pyramid_scales(480, 640, min_face_size=20, scale_factor=0.709)
    assert scales[0] == pytest.approx(0.6) and min(480, 640) * scales[-1] >= 12 > 480 * scales[-1] * 0.709
    layout = pyramid_layout(480, 640, tuple(scales))
    canvas = np.zeros((max(t + h for t, _, h, _ in layout), max(l + w for _, l, _, w in layout)), int)
    for top, left, h, w in layout:
        assert top % 2 == 0 and left % 2 == 0
        canvas[top:top + h, left:left + w] += 1
    assert canvas.max() == 1  # tiles never overlap
    assert canvas.sum() / canvas.size > 0.7  # and waste little of the canvas


def test_tiled_pyramid_equals_each_scale_alone():
    """Every P-Net window inside a tile reads the same pixels as on the scaled image alone."""
    torch.manual_seed(0)
    net = PNet().eval()
    images = torch.rand(2, 3, 97, 131) * 255
    scales = pyramid_scales(97, 131, min_face_size=15, scale_factor=0.709)
    layout = pyramid_layout(97, 131, tuple(scales))
    with torch.no_grad():
        prob, reg = net(tile_pyramid(images, layout))
        for (top, left, h, w), level in zip(layout, pyramid_levels(images, layout)):
            assert level.shape[-2:] == (h, w)
            alone_prob, alone_reg = net(level)
            rows, cols = (h - 12) // 2 + 1, (w - 12) // 2 + 1
            r, c = top // 2, left // 2
            torch.testing.assert_close(prob[:, r:r + rows, c:c + cols], alone_prob[:, :rows, :cols])
            torch.testing.assert_close(reg[:, :, r:r + rows, c:c + cols], alone_reg[:, :, :rows, :cols])
