from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from noisyfer.config import AugmentConfig
from noisyfer.engine import augment as A


def _images(n=6, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = _images()
    torch.manual_seed(3)
    out = A.random_crop(x, 2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(x.shape[0]):
        windows = [padded[i, :, dy:dy + 16, dx:dx + 16] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert torch.equal(A.random_crop(x, 0), x)


def test_hflip_probability_extremes():
    x = _images()
    assert torch.equal(A.random_hflip(x, 1.0), x.flip(-1))
    assert torch.equal(A.random_hflip(x, 0.0), x)


def test_erasing_area_within_scale_and_fill_value():
    x = torch.ones(200, 3, 32, 32)
    torch.manual_seed(0)
    out = A.random_erasing(x, 1.0, (0.02, 0.25), value=0.0)
    erased = (out[:, 0] == 0).float().mean(dim=(1, 2))
    assert torch.all(erased > 0)
    # area fraction drawn in [0.02, 0.25]; clipping to the image can only shrink it
    assert erased.max() <= 0.25 + 2 * 32 / 1024
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # same rectangle over the channels
    assert torch.equal(A.random_erasing(x, 0.0, (0.02, 0.25)), x)


def test_equalize_matches_pil():
    rng = np.random.default_rng(0)
    arr = (rng.beta(2, 5, size=(24, 24, 3)) * 255).astype(np.uint8)
    x = torch.from_numpy(arr).permute(2, 0, 1).float().div(255).unsqueeze(0)
    ours = (A._equalize(x, 0, None)[0].permute(1, 2, 0) * 255).round().numpy().astype(int)
    pil = np.asarray(ImageOps.equalize(Image.fromarray(arr))).astype(int)
    assert np.array_equal(ours, pil)


def test_posterize_and_solarize_by_hand():
    x = torch.tensor([0.0, 100 / 255, 200 / 255, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    post = A._posterize(x, 1.0, None)  # 4 bits kept: multiples of 16
    assert (post[0, 0, 0] * 255).round().tolist() == [0, 96, 192, 240]
    sol = A._solarize(x, 0.5, None)  # threshold 0.5: values >= 0.5 inverted
    assert torch.allclose(sol[0, 0, 0], torch.tensor([0.0, 100 / 255, 55 / 255, 0.0]))


@pytest.mark.parametrize("name", list(A.RANDAUGMENT_OPS))
def test_each_randaugment_op_keeps_range_and_shape(name):
    x = _images(4)
    out = A.RANDAUGMENT_OPS[name](x, 1.0, torch.tensor([1.0, -1.0, 1.0, -1.0]))
    assert out.shape == x.shape
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    if name == "identity":
        assert torch.equal(out, x)


def test_views_are_reproducible_under_the_global_seed_and_normalized():
    aug = A.Augmenter(AugmentConfig(noise=0.5), image_size=16)
    x = _images(8)
    outs = []
    for _ in range(2):
        torch.manual_seed(11)
        outs.append([aug.train(x), aug.weak(x), aug.strong(x)])
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    gray = torch.full((1, 3, 4, 4), 0.5)
    expected = (0.5 - torch.tensor(aug.config.mean)) / torch.tensor(aug.config.std)
    assert torch.allclose(aug.eval(gray)[0, :, 0, 0], expected)


def test_rand_augment_applies_exactly_the_drawn_ops():
    x = _images(5)
    torch.manual_seed(5)
    choices = torch.randint(0, len(A.RANDAUGMENT_OPS), (1, 5))
    torch.manual_seed(5)
    out = A.rand_augment(x, num_ops=1, magnitude=10)
    names = list(A.RANDAUGMENT_OPS)
    for i in range(5):
        if names[int(choices[0, i])] == "identity":
            assert torch.equal(out[i], x[i])


def test_crop_flip_equals_a_mirrored_window_of_the_padded_image_for_uint8_and_float():
    x = (_images(10, 12) * 255).round().to(torch.uint8)
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3))
    torch.manual_seed(5)
    out = A.random_crop_flip(x, 3, 0.5)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    flips = 0
    for i in range(x.shape[0]):
        windows = [padded[i, :, dy:dy + 12, dx:dx + 12] for dy in range(7) for dx in range(7)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 0 < flips < x.shape[0]
    torch.manual_seed(5)
    as_float = A.random_crop_flip(x.float() / 255, 3, 0.5)  # same draws, same windows
    assert torch.equal((as_float * 255).round().to(torch.uint8), out)


def test_views_of_uint8_and_float_images_agree():
    aug = A.Augmenter(AugmentConfig(rotation=10.0, noise=0.5), image_size=16)
    x8 = (_images(8) * 255).round().to(torch.uint8)
    xf = x8.float() / 255
    for view in ("train", "weak", "strong", "eval"):
        torch.manual_seed(2)
        a = getattr(aug, view)(x8)
        torch.manual_seed(2)
        b = getattr(aug, view)(xf)
        assert a.dtype == torch.float32 and a.is_contiguous()
        assert torch.allclose(a, b, atol=1e-5), view
    expected = (xf - torch.tensor(aug.config.mean).view(1, 3, 1, 1)) / torch.tensor(aug.config.std).view(1, 3, 1, 1)
    assert torch.allclose(aug.eval(x8), expected, atol=1e-6)


def test_rand_augment_equals_the_drawn_ops_applied_sample_by_sample_and_keeps_its_input():
    x = _images(12)
    before = x.clone()
    torch.manual_seed(11)
    choices = torch.randint(0, len(A.RANDAUGMENT_OPS), (2, 12))
    signs = (torch.randint(0, 2, (2, 12)) * 2 - 1).float()
    torch.manual_seed(11)
    out = A.rand_augment(x, num_ops=2, magnitude=10)
    assert torch.equal(x, before)  # a new tensor: the input batch is not written
    ops = list(A.RANDAUGMENT_OPS.values())
    m = 10 / A._MAX_MAGNITUDE
    for i in range(12):
        sample = x[i:i + 1]
        for k in range(2):
            sample = ops[int(choices[k, i])](sample, m, signs[k, i:i + 1])
        assert torch.allclose(out[i], sample[0], atol=1e-6), i


def test_invert_maps_x_to_one_minus_x_on_exactly_the_rows_it_picks():
    x = _images(16)
    assert torch.equal(A.RANDAUGMENT_OPS["invert"](x, 0.3, torch.ones(16)), 1.0 - x)
    names = list(A.RANDAUGMENT_OPS)
    torch.manual_seed(4)
    choices = torch.randint(0, len(names), (1, 16))
    torch.manual_seed(4)
    out = A.rand_augment(x, num_ops=1, magnitude=10)
    picked = [i for i in range(16) if names[int(choices[0, i])] == "invert"]
    others = [i for i in range(16) if i not in picked]
    assert picked and others  # seed 4 draws inversion for some rows and not for others
    assert torch.equal(out[picked], 1.0 - x[picked])
    assert not torch.allclose(out[others], 1.0 - x[others])


def test_strong_view_without_invert_draws_cubuks_14_ops_sample_by_sample():
    # strong_invert=false: the draws index the 14 ops as before inversion was added, so every image is
    # what the 14-op RandAugment makes of it; the default draws among 15 and uses inversion
    assert A.CUBUK_OPS == tuple(list(A.RANDAUGMENT_OPS)[:14]) and "invert" not in A.CUBUK_OPS
    x = _images(12)
    aug = A.Augmenter(AugmentConfig(strong_invert=False, crop_padding=0.0, hflip=0.0), image_size=16)
    torch.manual_seed(7)
    choices = torch.randint(0, 14, (2, 12))
    signs = (torch.randint(0, 2, (2, 12)) * 2 - 1).float()
    torch.manual_seed(7)
    out = aug.strong(x)
    m = 10 / A._MAX_MAGNITUDE
    for i in range(12):
        sample = x[i:i + 1]
        for k in range(2):
            sample = A.RANDAUGMENT_OPS[A.CUBUK_OPS[int(choices[k, i])]](sample, m, signs[k, i:i + 1])
        assert torch.allclose(out[i], aug.normalize(sample)[0], atol=1e-5), i
    assert AugmentConfig().strong_invert
    with pytest.raises(ValueError, match="ops must be names"):
        A.rand_augment(x, num_ops=1, magnitude=10, ops=["invert", "blur"])
