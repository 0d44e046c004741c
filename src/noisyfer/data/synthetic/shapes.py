"""Batched analytic shapes with antialiasing, and compositing on a channel-first canvas.

Shapes are signed distances in face units (negative inside) evaluated on coordinate arrays of shape
(B, H, W); per-face parameters are (B, 1, 1) arrays so one numpy call draws a shape on every face of
a batch. ``pix`` (B, 1, 1) converts face units to pixels; :func:`cover` turns a distance into pixel
coverage with a one-pixel linear ramp, which is the antialiasing.

The canvas is float32 (3, B, H, W) RGB in 0..1: each channel plane is contiguous, which keeps the
per-channel blends cheap.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def per_face(x: np.ndarray) -> np.ndarray:
    """(B,) -> (B, 1, 1) float32, for broadcasting against (B, H, W) grids."""
    return np.asarray(x, dtype=F32)[:, None, None]


def rgb(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, 3) colours -> three (B, 1, 1) planes."""
    x = np.asarray(x, dtype=F32)
    return x[:, 0, None, None], x[:, 1, None, None], x[:, 2, None, None]


def cover(dist: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Coverage in 0..1 of the region ``dist < 0`` (a new array)."""
    c = dist * (-pix)
    c += 0.5
    np.clip(c, 0.0, 1.0, out=c)
    return c


def line_cover(offset: np.ndarray, half_width: np.ndarray | float, pix: np.ndarray) -> np.ndarray:
    """Coverage of a line whose centre is where ``offset == 0`` (``offset`` in face units).

    Lines thinner than one pixel are drawn one pixel wide with proportionally lower opacity, so
    their ink does not change with the image size.
    """
    half_px = np.maximum(half_width * pix, 0.5)
    strength = np.minimum(half_width * pix / half_px, 1.0)
    c = np.abs(offset * pix)
    np.subtract(half_px + 0.5, c, out=c)
    np.clip(c, 0.0, 1.0, out=c)
    c *= strength
    return c


def ellipse(u: np.ndarray, v: np.ndarray, cu, cv, a, b) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (exact on the minor axis)."""
    du = (u - cu) / a
    dv = (v - cv) / b
    du *= du
    dv *= dv
    du += dv
    np.sqrt(du, out=du)
    du -= 1.0
    du *= np.minimum(a, b)
    return du


def box(u: np.ndarray, v: np.ndarray, cu, cv, a, b) -> np.ndarray:
    """Signed distance (Chebyshev) to an axis-aligned rectangle of half sizes ``a``, ``b``."""
    return np.maximum(np.abs(u - cu) - a, np.abs(v - cv) - b)


def capsule(u: np.ndarray, v: np.ndarray, cu, v0, v1, radius) -> np.ndarray:
    """Signed distance to a vertical capsule: segment u=cu, v0<=v<=v1, thickened by ``radius``."""
    dv = v - np.clip(v, v0, v1)
    du = u - cu
    du *= du
    dv *= dv
    du += dv
    np.sqrt(du, out=du)
    du -= radius
    return du


def smooth_window(x: np.ndarray, lo, hi, ramp) -> np.ndarray:
    """1 inside [lo, hi], falling linearly to 0 over ``ramp`` outside (a soft interval mask)."""
    w = np.minimum(x - (lo - ramp), (hi + ramp) - x)
    w /= ramp
    np.clip(w, 0.0, 1.0, out=w)
    return w


def paint(canvas: np.ndarray, cov: np.ndarray, colour) -> None:
    """Blend ``colour`` over ``canvas`` with opacity ``cov`` (B, H, W), in place.

    ``colour`` is a sequence of three planes broadcastable to (B, H, W).
    """
    for ch in range(3):
        plane = canvas[ch]
        t = plane - colour[ch]
        t *= cov
        plane -= t


def scale_brightness(canvas: np.ndarray, factor: np.ndarray) -> None:
    """Multiply every channel by ``factor`` (broadcastable to (B, H, W)), in place."""
    canvas *= factor[None]


def stripes(x: np.ndarray, period: float, pix: np.ndarray, sharpness: float = 4.0) -> np.ndarray:
    """Periodic 0..1 ridges along ``x`` (wrinkles, pleats), faded to their mean where a period is
    shorter than ~3 pixels, which would alias."""
    fade = np.clip((period * pix - 2.0) / 2.0, 0.0, 1.0).astype(F32)
    # unresolved ridges fade to half their mean: a fine texture reads lighter than its lines
    mean = F32(0.5 * _ridge_mean(sharpness))
    if not fade.any():
        return np.full(x.shape, mean, dtype=F32)
    r = np.cos(x * (2 * np.pi / period))
    r += 1.0
    r *= 0.5
    r **= sharpness
    r -= mean
    r *= fade
    r += mean
    return r


def _ridge_mean(sharpness: float) -> float:
    t = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    return float((((np.cos(t) + 1) / 2) ** sharpness).mean())
