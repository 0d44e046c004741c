"""Batch augmentation on tensors: every op draws per-sample parameters and runs on the whole batch.

Images enter as stored, uint8 (N, 3, H, W), or as float in [0, 1], on any device; the views a method
asks for come out normalised float. Randomness comes from torch's global generators (CPU and the images' device), which
the engine seeds and checkpoints, so augmented batches are reproducible and resume exactly.

Views
-----
``train``  crop with padding, horizontal flip, small rotation, Gaussian noise, normalise, random
           erasing (the FER recipe of SCN / EAC / RUL).
``weak``   crop with padding and flip, normalised (NCCTFER's weak view).
``strong`` weak + RandAugment (``strong_ops`` ops of magnitude ``strong_magnitude`` out of 30),
           normalised. The operations are Cubuk et al.'s 14 (2020) plus colour inversion, which
           NCCTFER's paper lists among its RandAugment operations (``strong_invert=false``: the 14).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import AugmentConfig

_MAX_MAGNITUDE = 30.0


def _uniform(n: int, low: float, high: float, device: torch.device) -> Tensor:
    return torch.rand(n, device=device) * (high - low) + low


def _bernoulli(n: int, p: float, device: torch.device) -> Tensor:
    return torch.rand(n, device=device) < p


def hflip(images: Tensor) -> Tensor:
    """Mirror every image left-right."""
    return images.flip(-1)


def to_float(images: Tensor) -> Tensor:
    """Contiguous float images in [0, 1]: stored uint8 images scaled by 1/255, float ones as they are."""
    if images.dtype == torch.uint8:
        return torch.empty(images.shape, dtype=torch.float32, device=images.device).copy_(images).div_(255.0)
    return images.contiguous()


def random_crop_flip(images: Tensor, padding: int, p_flip: float) -> Tensor:
    """Zero-pad by ``padding`` pixels, crop back to size at a random offset and mirror with
    probability ``p_flip``, per sample (any dtype, uint8 included).

    Two passes that keep the (N, C, H, W) layout: the padded batch is viewed as all its vertical
    windows at once (no copy) and each sample's rows are picked with one index; a gather along the
    width then takes each sample's (possibly mirrored) column range.
    """
    if padding <= 0 and p_flip <= 0:
        return images
    n, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (padding, padding, padding, padding)) if padding > 0 else images
    s_n, s_c, s_h, s_w = padded.stride()
    windows = padded.as_strided((n, c, 2 * padding + 1, h, w + 2 * padding), (s_n, s_c, s_h, s_h, s_w))
    offset_y = torch.randint(0, 2 * padding + 1, (n,), device=dev)
    offset_x = torch.randint(0, 2 * padding + 1, (n, 1), device=dev)
    flip = _bernoulli(n, p_flip, dev).view(n, 1)
    xs = torch.arange(w, device=dev).view(1, w)
    cols = offset_x + torch.where(flip, w - 1 - xs, xs)
    rows = windows[torch.arange(n, device=dev), :, offset_y]  # (n, c, h, w + 2 * padding)
    return rows.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def random_hflip(images: Tensor, p: float) -> Tensor:
    """Mirror each image left-right with probability ``p``."""
    return random_crop_flip(images, 0, p)


def random_crop(images: Tensor, padding: int) -> Tensor:
    """Zero-pad by ``padding`` pixels and crop back to size at a random offset per sample."""
    return random_crop_flip(images, padding, 0.0)


def affine(images: Tensor, matrices: Tensor) -> Tensor:
    """Apply per-sample 2x3 affine ``matrices`` (normalised coordinates) with zero fill."""
    grid = F.affine_grid(matrices.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_matrices(angles_deg: Tensor) -> Tensor:
    theta = angles_deg * (math.pi / 180.0)
    cos, sin = theta.cos(), theta.sin()
    zero = torch.zeros_like(theta)
    return torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)


def random_rotation(images: Tensor, max_degrees: float) -> Tensor:
    if max_degrees <= 0:
        return images
    angles = _uniform(images.shape[0], -max_degrees, max_degrees, images.device)
    return affine(images, rotation_matrices(angles))


def gaussian_noise(images: Tensor, p: float, std: float) -> Tensor:
    if p <= 0:
        return images
    apply = _bernoulli(images.shape[0], p, images.device).view(-1, 1, 1, 1)
    noisy = (images + torch.randn_like(images) * std).clamp(0.0, 1.0)
    return torch.where(apply, noisy, images)


def random_erasing(images: Tensor, p: float, scale: tuple[float, float], ratio=(0.3, 3.3), value: float = 0.0,
                   *, inplace: bool = False) -> Tensor:
    """Erase one random rectangle per selected sample (area fraction in ``scale``, log-uniform aspect)."""
    if p <= 0:
        return images
    n, _, h, w = images.shape
    dev = images.device
    area = _uniform(n, scale[0], scale[1], dev) * (h * w)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), dev)
    aspect = log_ratio.exp()
    eh = (area * aspect).sqrt().round().clamp(1, h)
    ew = (area / aspect).sqrt().round().clamp(1, w)
    y0 = (torch.rand(n, device=dev) * (h - eh + 1)).floor()
    x0 = (torch.rand(n, device=dev) * (w - ew + 1)).floor()
    ys = torch.arange(h, device=dev).view(1, h)
    xs = torch.arange(w, device=dev).view(1, w)
    in_rows = (ys >= y0.view(-1, 1)) & (ys < (y0 + eh).view(-1, 1)) & _bernoulli(n, p, dev).view(-1, 1)
    in_cols = (xs >= x0.view(-1, 1)) & (xs < (x0 + ew).view(-1, 1))
    if value == 0.0 and images.is_floating_point():
        # keep = 1 - rows (x) cols as one batched outer product, then one broadcast multiply: several
        # times faster on CPU than building a boolean (N, H, W) mask for masked_fill
        ones = torch.ones(1, 1, 1, dtype=images.dtype, device=dev).expand(n, h, w)
        keep = torch.baddbmm(ones, in_rows.to(images.dtype).unsqueeze(2), in_cols.to(images.dtype).unsqueeze(1),
                             alpha=-1.0).unsqueeze(1)
        return images.mul_(keep) if inplace else images * keep
    mask = (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)
    return images.masked_fill_(mask, value) if inplace else images.masked_fill(mask, value)


# -- RandAugment ops: f(images, magnitude in [0, 1], signs (N,)) -> images, all in [0, 1] ----------

def _blend(a: Tensor, b: Tensor, factor: Tensor) -> Tensor:
    return (b + (a - b) * factor.view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def _gray(images: Tensor) -> Tensor:
    r, g, b = images.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _autocontrast(x, m, s):
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    scale = torch.where(high > low, 1.0 / (high - low).clamp_min(1e-6), torch.ones_like(high))
    return torch.where(high > low, (x - low) * scale, x).clamp(0.0, 1.0)


def _equalize(x, m, s):
    """Histogram equalisation per channel, PIL's rule: lut[v] = (count below v + step // 2) // step
    with step = (pixels not in the top occupied level) // 255."""
    n, c, h, w = x.shape
    levels = (x * 255).round().long().clamp(0, 255).reshape(n, c, -1)
    hist = torch.zeros(n, c, 256, device=x.device).scatter_add_(2, levels, torch.ones_like(levels, dtype=torch.float))
    top = torch.where(hist > 0, torch.arange(256, device=x.device).float(), torch.full_like(hist, -1.0)).argmax(2, keepdim=True)
    step = ((h * w - hist.gather(2, top)) / 255).floor()
    below = hist.cumsum(2) - hist
    lut = ((below + (step / 2).floor()) / step.clamp_min(1)).floor().clamp(0, 255)
    identity = torch.arange(256, device=x.device).float().expand_as(lut)
    lut = torch.where(step > 0, lut, identity)
    return (lut.gather(2, levels) / 255.0).view(n, c, h, w)


def _solarize(x, m, s):
    threshold = 1.0 - m
    return torch.where(x >= threshold, 1.0 - x, x)


def _posterize(x, m, s):
    bits = int(round(8 - 4 * m))
    step = 2 ** (8 - bits)
    return ((x * 255).floor() / step).floor() * step / 255.0


def _factor(m, s):
    return 1.0 + 0.9 * m * s


def _color(x, m, s):
    return _blend(x, _gray(x).expand_as(x), _factor(m, s))


def _contrast(x, m, s):
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean.expand_as(x), _factor(m, s))


def _brightness(x, m, s):
    return _blend(x, torch.zeros_like(x), _factor(m, s))


def _sharpness(x, m, s):
    kernel = torch.tensor([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=x.dtype, device=x.device) / 13
    smooth = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(3, 1, 3, 3), groups=3)
    return _blend(x, smooth, _factor(m, s))


def _geometric(kind: str):
    def op(x, m, s):
        n = x.shape[0]
        eye = torch.eye(2, 3, device=x.device).repeat(n, 1, 1)
        if kind == "rotate":
            return affine(x, rotation_matrices(30.0 * m * s))
        if kind == "shear_x":
            eye[:, 0, 1] = 0.3 * m * s
        elif kind == "shear_y":
            eye[:, 1, 0] = 0.3 * m * s
        elif kind == "translate_x":
            eye[:, 0, 2] = 2 * 0.45 * m * s
        elif kind == "translate_y":
            eye[:, 1, 2] = 2 * 0.45 * m * s
        return affine(x, eye)

    return op


def _invert(x, m, s):
    """Colour inversion x -> 1 - x (no magnitude, as in PIL's ImageOps.invert)."""
    return 1.0 - x


#: RandAugment's operations, name -> f(images, magnitude in [0, 1], signs (N,)). The first 14 are Cubuk et
#: al.'s (their order fixes which op a draw picks); ``invert`` is last, so leaving it out draws exactly
#: as before it was added.
RANDAUGMENT_OPS = {
    "identity": lambda x, m, s: x,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "rotate": _geometric("rotate"),
    "solarize": _solarize,
    "color": _color,
    "posterize": _posterize,
    "contrast": _contrast,
    "brightness": _brightness,
    "sharpness": _sharpness,
    "shear_x": _geometric("shear_x"),
    "shear_y": _geometric("shear_y"),
    "translate_x": _geometric("translate_x"),
    "translate_y": _geometric("translate_y"),
    "invert": _invert,
}

#: Cubuk et al.'s 14 operations (RandAugment without colour inversion).
CUBUK_OPS = tuple(name for name in RANDAUGMENT_OPS if name != "invert")


def rand_augment(images: Tensor, *, num_ops: int, magnitude: float, ops=None) -> Tensor:
    """RandAugment: each sample gets ``num_ops`` ops drawn uniformly, each with a random sign.

    ``ops``: the names (keys of :data:`RANDAUGMENT_OPS`) to draw from, in this order; ``None`` is all of
    them. The op choice is drawn on the CPU so that selecting sub-batches never waits on the device.
    """
    if num_ops <= 0:
        return images
    names = list(RANDAUGMENT_OPS) if ops is None else list(ops)
    unknown = [name for name in names if name not in RANDAUGMENT_OPS]
    if unknown or not names:
        raise ValueError(f"rand_augment: ops must be names from {', '.join(RANDAUGMENT_OPS)}, got {names}")
    n = images.shape[0]
    m = min(max(magnitude / _MAX_MAGNITUDE, 0.0), 1.0)
    choices = torch.randint(0, len(names), (num_ops, n))
    signs = (torch.randint(0, 2, (num_ops, n)) * 2 - 1).to(images.device, images.dtype)
    # One copy of the batch, then each op writes its own rows in place: within a round the ops' row
    # sets are disjoint, so every op still reads the rows as the previous round left them.
    out = images.clone()
    for k in range(num_ops):
        for op_index in choices[k].unique().tolist():
            rows = (choices[k] == op_index).nonzero().flatten().to(images.device)
            out.index_copy_(0, rows, RANDAUGMENT_OPS[names[op_index]](out[rows], m, signs[k][rows]))
    return out


class Augmenter:
    """The run's augmentation views (see the module docstring), built from ``augment.*`` settings.

    Every view takes the batch as stored (uint8 (N, 3, H, W), any strides) or as float in [0, 1]
    and returns a new, contiguous, normalised float tensor. On uint8 input the crop, flip and pad
    move bytes, and the cast, the 1/255 scale and the normalisation are one pass.
    """

    def __init__(self, config: AugmentConfig, *, image_size: int):
        self.config = config
        self.padding = int(round(config.crop_padding * image_size))
        self._mean = torch.tensor(config.mean).view(1, 3, 1, 1)
        self._std = torch.tensor(config.std).view(1, 3, 1, 1)

    to_float = staticmethod(to_float)
    hflip = staticmethod(hflip)

    def normalize(self, images: Tensor) -> Tensor:
        """(x - mean) / std of the images in [0, 1] (uint8 ones read as x / 255), into a new tensor."""
        scale = 1.0 / self._std
        if images.dtype == torch.uint8:
            scale = scale / 255.0
        dtype = torch.float32 if images.dtype == torch.uint8 else images.dtype
        scale = scale.to(images.device, dtype)
        shift = (-self._mean / self._std).to(images.device, dtype)
        # cast into a contiguous output first, then scale and shift it in place (an op mixing uint8
        # and float inputs would make a float copy of the input on the way; broadcast addcmul is
        # several times slower than mul_ + add_ on CPU)
        out = torch.empty(images.shape, dtype=dtype, device=images.device).copy_(images)
        return out.mul_(scale).add_(shift)

    def geometric(self, images: Tensor) -> Tensor:
        """Crop with padding and flip: the shared geometric part of every training view (any dtype)."""
        return random_crop_flip(images, self.padding, self.config.hflip)

    def erase(self, normalized: Tensor) -> Tensor:
        """Random erasing, in place on a normalised view this Augmenter made."""
        c = self.config
        return random_erasing(normalized, c.erasing, tuple(c.erasing_scale), inplace=True)

    def train(self, images: Tensor) -> Tensor:
        c = self.config
        x = self.geometric(images)
        if c.rotation > 0 or c.noise > 0:
            x = gaussian_noise(random_rotation(to_float(x), c.rotation), c.noise, c.noise_std)
        return self.erase(self.normalize(x))

    def weak(self, images: Tensor) -> Tensor:
        return self.normalize(self.geometric(images))

    def strong(self, images: Tensor) -> Tensor:
        c = self.config
        ops = None if c.strong_invert else CUBUK_OPS
        x = rand_augment(to_float(self.geometric(images)), num_ops=c.strong_ops, magnitude=c.strong_magnitude, ops=ops)
        return self.normalize(x)

    def eval(self, images: Tensor) -> Tensor:
        """The evaluation view: normalisation only."""
        return self.normalize(images)
