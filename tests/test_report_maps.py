"""Where a CAM's cells are drawn: over the pixel each cell's receptive field is centred on."""

from __future__ import annotations

import numpy as np
import pytest

from noisyfer.report.figures_images import map_stride, upsample_maps


@pytest.mark.parametrize("image_side, map_side, stride", [
    (32, 2, 16), (33, 3, 16), (224, 7, 32), (100, 4, 32), (48, 3, 16), (32, 32, 1), (30, 7, None),
])
def test_map_stride_follows_ceil_halving(image_side, map_side, stride):
    assert map_stride(image_side, map_side) == stride


def test_a_hot_right_column_is_drawn_from_the_pixel_it_looks_at():
    # 2x2 map at 32 px, stride 16: cells look at pixels 0 and 16, so the value rises linearly from
    # column 0 (0) to column 16 (1) and stays 1 up to the right edge; rows are constant.
    maps = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    up = upsample_maps(maps, (32, 32))[0]
    assert up.shape == (32, 32)
    assert np.allclose(up[:, 0], 0.0) and np.allclose(up[:, 8], 0.5) and np.allclose(up[:, 16:], 1.0)
    assert np.allclose(up, up[:1])


def test_unknown_strides_fall_back_to_centre_alignment():
    # 7 cells over 30 px match no halving: cell centres at (j + 0.5) * 30 / 7 - 0.5, as align_corners=False
    maps = np.zeros((1, 1, 7))
    maps[0, 0, 3] = 1.0
    up = upsample_maps(maps, (1, 30))[0, 0]
    centre = 3.5 * 30 / 7 - 0.5
    assert int(np.argmax(up)) == round(centre)
    assert up.min() == 0.0 and up.max() == 1.0
