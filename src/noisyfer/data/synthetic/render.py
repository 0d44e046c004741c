"""Vectorised face renderer: background, head, hair, features, lighting, occluders, camera effects.

:func:`render_faces` draws a whole batch with numpy array operations (no per-face Python): every
shape is an analytic signed distance evaluated on all pixels of all faces at once, antialiased by a
one-pixel coverage ramp (see ``shapes``). Layers, back to front: gradient background with optional
clutter, shoulders and neck, back hair, ears, face, wrinkles, nose, cheeks, mouth, eyes, brows,
front hair, directional lighting, occluders, then exposure/white balance, defocus blur and sensor
noise.
"""

from __future__ import annotations

import numpy as np

from .features import (
    darken,
    draw_brows,
    draw_cheeks,
    draw_eyes,
    draw_forehead,
    draw_nose,
    eye_geometry,
)
from .frame import Frame, on_subset
from .identity import CLUTTER_SHAPES, HAIR_BALD, HAIR_LONG
from .mouth import draw_mouth, mouth_half_width
from .occluders import draw_occluders
from .shapes import F32, box, cover, ellipse, paint, per_face, rgb, stripes

#: Faces x pixels drawn per numpy call (bounds the temporaries to a few MiB each).
PIXELS_PER_BATCH = 1 << 18
#: Regions (feature coordinates) drawn on by nose, cheeks and mouth (lower) and by forehead
#: wrinkles, eyes and brows (upper), including soft edges and the largest control values.
LOWER_FACE_U, LOWER_FACE_V = (-0.52, 0.52), (-0.07, 0.98)
UPPER_FACE_U, UPPER_FACE_V = (-0.47, 0.47), (-0.74, 0.1)


def render_faces(
    controls: np.ndarray,
    identity: dict[str, np.ndarray],
    nuisance: dict[str, np.ndarray],
    *,
    size: int,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Render faces as uint8 RGB images.

    Parameters
    ----------
    controls
        (N, K) float array of expression controls in ``expressions.CONTROLS`` order: 0 relaxed,
        1 a full action (the prototypes reach 1.2 at the highest intensity); values are clipped to
        0..1.5 (``eye_aperture`` to -1.5..1.5).
    identity, nuisance
        Per-face parameter dicts as drawn by ``identity.sample_identities`` and
        ``identity.sample_nuisances`` (first dimension N).
    size
        Image side in pixels (any; the simulator uses 32..224). Faces are drawn in batches of
        ``PIXELS_PER_BATCH`` pixels; the output does not depend on the batching.
    rng
        Generator of the sensor noise (default: seeded with 0, so the output is deterministic).

    Returns
    -------
    numpy.ndarray
        uint8 array (N, size, size, 3).
    """
    controls = np.asarray(controls, dtype=F32)
    n = controls.shape[0]
    rng = np.random.default_rng(0) if rng is None else rng
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    step = max(1, PIXELS_PER_BATCH // (size * size))
    for start in range(0, n, step):
        part = slice(start, min(n, start + step))
        ident = {k: a[part] for k, a in identity.items()}
        nuis = {k: a[part] for k, a in nuisance.items()}
        out[part] = _render_batch(controls[part], ident, nuis, size, rng)
    return out


def _render_batch(controls, identity, nuisance, size, rng) -> np.ndarray:
    fr = Frame.build(identity, nuisance, controls, size=size)
    canvas = _background(fr)
    on_subset(canvas, fr, nuisance["clutter"], _clutter)
    lit = _head(canvas, fr)

    # features are drawn in two windows, which hold every pixel they can touch
    lower, at = fr.window(LOWER_FACE_U, LOWER_FACE_V)
    part = canvas[(slice(None),) + at]
    draw_nose(part, lower)
    mouth_w = mouth_half_width(lower)
    draw_cheeks(part, lower, mouth_w)
    draw_mouth(part, lower, mouth_w)
    canvas[(slice(None),) + at] = part
    upper, at = fr.window(UPPER_FACE_U, UPPER_FACE_V)
    part = canvas[(slice(None),) + at]
    draw_forehead(part, upper)
    geometry = eye_geometry(upper)
    draw_eyes(part, upper, geometry)
    draw_brows(part, upper, geometry)
    canvas[(slice(None),) + at] = part
    lit = np.maximum(lit, _front_hair(canvas, fr))
    _shade(canvas, fr, lit)
    draw_occluders(canvas, fr, face_distance)
    _camera(canvas, fr, rng)

    canvas *= 255.0
    canvas += 0.5
    np.clip(canvas, 0.0, 255.0, out=canvas)
    return canvas.astype(np.uint8).transpose(1, 2, 3, 0)


def _background(fr: Frame) -> np.ndarray:
    ang = fr.nuisance["bg_angle"].astype(np.float64)
    gx, gy = per_face(0.35 * np.cos(ang)), per_face(0.35 * np.sin(ang))
    t = (gx * fr.x + 0.5) + gy * fr.y  # (B, S, S) in 0.15..0.85
    c0, c1 = rgb(fr.nuisance["bg0"]), rgb(fr.nuisance["bg1"])
    canvas = np.empty((3,) + t.shape, dtype=F32)
    for ch in range(3):
        np.multiply(t, c1[ch] - c0[ch], out=canvas[ch])
        canvas[ch] += c0[ch]
    return canvas


def _clutter(canvas: np.ndarray, fr: Frame) -> None:
    """A few random rectangles and ellipses behind the person (image coordinates)."""
    pix = F32(fr.size / 2.0)
    xy, size = fr.nuisance["clutter_xy"], fr.nuisance["clutter_size"]
    for k in range(CLUTTER_SHAPES):
        cx, cy = per_face(xy[:, k, 0]), per_face(xy[:, k, 1])
        a, b = per_face(size[:, k, 0]), per_face(size[:, k, 1])
        round_ = per_face(fr.nuisance["clutter_round"][:, k])
        dx = np.abs(fr.x - cx)  # (B, 1, S)
        dy = np.abs(fr.y - cy)  # (B, S, 1)
        rect = np.maximum(dx - a, dy - b)
        ell = np.sqrt((dx / a) ** 2 + (dy / b) ** 2)
        ell -= 1.0
        ell *= np.minimum(a, b)
        d = np.where(round_ > 0, ell, rect)
        paint(canvas, cover(d, pix), rgb(fr.nuisance["clutter_rgb"][:, k]))


def face_distance(fr: Frame) -> np.ndarray:
    """Signed distance (B, S, S) to the face outline: an egg whose jaw tapers, chin lowered by AU26
    and shifted with the yaw (the chin is in front of the rotation axis)."""
    fw, fh = fr.p("face_w"), fr.p("face_h")
    jaw = fr.c("jaw_drop", 0.0, 1.5)
    low = np.clip(fr.v / fh, 0.0, 1.0)
    uo = fr.u - (0.3 * fw * np.sin(fr.p("yaw"))) * low
    low *= low
    half_w = 1.0 - fr.p("jaw") * low
    half_w *= fw
    uo /= half_w
    uo *= uo
    vo = fr.v / np.where(fr.v > 0, fh * (1.0 + 0.08 * jaw), fh)
    vo *= vo
    uo += vo
    np.sqrt(uo, out=uo)
    uo -= 1.0
    uo *= fw * 0.85
    return uo


def _head(canvas: np.ndarray, fr: Frame) -> np.ndarray:
    """Shoulders, neck, back hair, ears and the face; returns the coverage to be lit (B, S, S)."""
    pix, u, v = fr.pix, fr.u, fr.v
    fw, fh = fr.p("face_w"), fr.p("face_h")
    skin = fr.colour("skin")
    paint(canvas, cover(ellipse(u, v, 0.0, 1.62, 1.4, 0.62), pix), fr.colour("cloth"))
    neck = cover(box(u, v, 0.0, 0.95, 0.42 * fw, 0.7), pix)
    paint(canvas, neck, tuple(s * 0.72 for s in skin))

    style = fr.identity["hair_style"][:, None, None]
    cap = ellipse(u, v, 0.0, -0.06, fw + 0.07, fh + 0.2)
    long_ = np.minimum(cap, box(u, v, 0.0, 0.45, fw + 0.13, 0.7))
    back = np.where(style == HAIR_LONG, long_, np.maximum(cap, v - 0.05))
    back = np.where(style == HAIR_BALD, F32(1.0), back)
    hair_cov = cover(back, pix)
    paint(canvas, hair_cov, tuple(h * 0.75 for h in fr.colour("hair")))

    sy = np.sin(fr.p("yaw"))
    eu = np.abs(u + 0.55 * fw * sy) - 0.98 * fw
    ear_v = fr.p("eye_y") + 0.1
    paint(canvas, cover(ellipse(eu, v, 0.0, ear_v, 0.065, 0.12), pix), tuple(s * 0.9 for s in skin))
    darken(canvas, cover(ellipse(eu, v, 0.01, ear_v, 0.03, 0.075), pix), 0.25)

    face = cover(face_distance(fr), pix)
    paint(canvas, face, skin)
    return np.maximum(face, hair_cov)


def _front_hair(canvas: np.ndarray, fr: Frame) -> np.ndarray:
    """Fringe over the forehead, sideburns (short hair) or side locks (long hair); returns coverage."""
    fw, fh = fr.p("face_w"), fr.p("face_h")
    style = fr.identity["hair_style"]
    rel = fr.u / fw
    fringe = rel * rel
    fringe *= 0.18
    fringe += fr.p("hairline")
    fringe += (0.5 * fr.p("hair_part")) * rel
    top = fr.v - fringe
    long_ = style == HAIR_LONG
    # long locks fall outward: their inner edge moves from 0.74 to 0.92 face half-widths
    flare = per_face(np.where(long_, 0.18, 0.0)) * np.clip(fr.v + 0.3, 0.0, 0.7) / 0.7
    side_u = (per_face(np.where(long_, 0.74, 0.93)) + flare) * fw
    side_v = per_face(np.where(long_, 0.4, -0.12))
    side = np.maximum(side_u - np.abs(fr.u), fr.v - side_v)
    d = np.maximum(ellipse(fr.u, fr.v, 0.0, -0.06, fw + 0.045, fh + 0.18), np.minimum(top, side))
    d = np.where(per_face(style) == HAIR_BALD, F32(1.0), d)
    c = cover(d, fr.pix)
    strands = stripes(fr.u + 0.15 * fr.v, 0.04, fr.pix, sharpness=2.0)
    strands *= c
    paint(canvas, c, fr.colour("hair"))
    darken(canvas, strands, 0.25)
    return c


def _shade(canvas: np.ndarray, fr: Frame, lit: np.ndarray) -> None:
    """Lambertian shading of the head, modelled as an ellipsoid, lit from ``nuisance['light']``."""
    light = fr.nuisance["light"]
    lx, ly, lz = (per_face(light[:, i]) for i in range(3))
    nx = fr.u / (fr.p("face_w") * 1.2)
    ny = (fr.v + 0.1) / (fr.p("face_h") * 1.3)
    nz = 1.0 - nx * nx - ny * ny
    np.maximum(nz, 0.0, out=nz)
    np.sqrt(nz, out=nz)
    lam = nx * lx
    lam += ny * ly
    lam += nz * lz
    np.clip(lam, 0.0, 1.0, out=lam)
    k = fr.p("light_strength")
    # shade = 1 - k + 1.2 k lam, applied where the head is
    lam *= 1.2 * k
    lam -= k
    lam *= lit
    lam += 1.0
    canvas *= lam[None]


def _camera(canvas: np.ndarray, fr: Frame, rng: np.random.Generator) -> None:
    """Exposure, contrast, white balance, defocus blur and Gaussian sensor noise."""
    gain = fr.p("gain")
    contrast = fr.p("contrast")
    wb = rgb(fr.nuisance["white_balance"])
    for ch in range(3):
        plane = canvas[ch]
        plane -= 0.5
        plane *= contrast
        plane += 0.5
        plane *= gain * wb[ch]
    on_subset(canvas, fr, fr.nuisance["blur"] > 0, _blur)
    # zero-mean uniform luminance noise with the drawn standard deviation (uniform draws are 4x
    # cheaper than Gaussian ones; after demosaicing and compression noise is mostly luminance)
    noise = rng.random(canvas.shape[1:], dtype=F32)
    noise -= 0.5
    noise *= fr.p("noise") * F32(np.sqrt(12.0))
    canvas += noise[None]


def _blur(canvas: np.ndarray, fr: Frame) -> None:
    """Separable Gaussian blur, sigma = ``nuisance['blur']`` pixels at 64 px, scaled with the size."""
    sigma = fr.nuisance["blur"].astype(np.float64) * (fr.size / 64.0)
    own_radius = np.maximum(1, np.ceil(2.5 * sigma))
    radius = int(own_radius.max())
    taps = np.arange(-radius, radius + 1)
    w = np.exp(-(taps[None, :] ** 2) / (2.0 * sigma[:, None] ** 2))
    # each face's kernel stops at its own radius, so the result does not depend on the batch
    w = np.where(np.abs(taps)[None, :] <= own_radius[:, None], w, 0.0)
    w = (w / w.sum(1, keepdims=True)).astype(F32)
    s = fr.size
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        src = np.pad(canvas, pad, mode="edge")
        acc = np.zeros_like(canvas)
        for i in range(taps.size):
            window = src[:, :, i : i + s, :] if axis == 2 else src[:, :, :, i : i + s]
            acc += w[None, :, i, None, None] * window
        canvas[...] = acc
