"""Where a CAM's cells are drawn: over the pixel each cell's receptive field is centred on."""

from __future__ import annotations

import numpy as np
import pytest

from noisyfer.models import map_stride
from noisyfer.report.figures_images import upsample_maps


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


def test_a_sweep_of_every_method_gets_distinct_line_colours():
    from noisyfer.report.figures import series_style, sweep_lines_figure, plt

    assert len({series_style(i)["color"] for i in range(20)}) == 20
    lines = {f"method{i}": ([0.0, 0.2, 0.4], [0.8, 0.7, 0.6 - i / 100], [0.01, 0.01, 0.01]) for i in range(13)}
    fig = sweep_lines_figure(lines, title="t")
    ax = fig.axes[0]
    colours = {str(bars.lines[0].get_color()) for bars in ax.containers if bars.get_label() in lines}
    assert len(colours) == 13
    legend = ax.get_legend()
    assert legend is not None and len(legend.get_texts()) == 13
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # beside the axes, not over the data
    plt.close(fig)


def test_suspect_captions_keep_the_class_names_whole():
    from noisyfer.report.figures_images import suspect_caption

    assert suspect_caption(742, "happiness", "surprise", 0.99951) == "#742  1.000\nhappiness -> surprise"
