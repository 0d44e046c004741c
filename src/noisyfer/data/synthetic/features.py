"""Expressive facial features: brows, eyes, wrinkles, nose and cheeks, drawn from the controls.

All functions draw on a (3, B, S, S) canvas in place, in feature coordinates (``frame.uf``, ``frame.v``);
symmetric features use ``|uf|`` so one evaluation draws both sides. The mouth lives in ``mouth.py``.
Magnitudes are in face units (a face is ~1.7 units tall, so 0.1 is about 1 cm on a real face).
"""

from __future__ import annotations

import numpy as np

from .frame import Frame, on_subset
from .shapes import F32, cover, ellipse, line_cover, paint, smooth_window, stripes


def darken(canvas: np.ndarray, alpha: np.ndarray, amount: float) -> None:
    """Multiply the canvas by ``1 - amount * alpha`` (shadows, creases), in place."""
    f = alpha * F32(-amount)
    f += 1.0
    canvas *= f[None]


def eye_geometry(fr: Frame) -> dict[str, np.ndarray]:
    """Mirrored eye coordinates and lid heights shared by eyes and brows."""
    au = np.abs(fr.uf)
    es, ew, eh = fr.p("eye_sep"), fr.p("eye_w"), fr.p("eye_h")
    lid_up = fr.c("upper_lid_raise", 0.0, 1.5)
    aperture = fr.c("eye_aperture", -1.5, 1.5)
    cheek = fr.c("cheek_raise", 0.0, 1.5)
    h_up = eh * np.maximum(1.0 + 0.95 * lid_up + 0.5 * aperture, 0.08)
    # the lower lid drops when the eye widens, rises when it narrows or the cheek pushes it up
    lower_gain = 1.0 + 0.35 * np.maximum(aperture, 0) - 0.5 * np.maximum(-aperture, 0) - 0.6 * cheek
    h_lo = eh * 0.75 * np.maximum(lower_gain, 0.08)
    uu = au - es
    vv = fr.v - fr.p("eye_y")
    vv += fr.p("eye_slant") * uu
    t = uu / ew
    t2 = t * t
    return {"au": au, "uu": uu, "vv": vv, "t": t, "t2": t2, "h_up": h_up, "h_lo": h_lo}


def draw_eyes(canvas: np.ndarray, fr: Frame, g: dict[str, np.ndarray]) -> None:
    """Sclera, iris, pupil, catch-light, lash line, lid crease and lower-lid folds."""
    pix, ew = fr.pix, fr.p("eye_w")
    vv, t, t2 = g["vv"], g["t"], g["t2"]
    upper = g["h_up"] * (1.0 - t2 * t2)  # 1 - t^4: a rounder upper lid
    lower = g["h_lo"] * (1.0 - t2)
    at = np.abs(t)
    d = np.maximum(-upper - vv, vv - lower)
    d = np.maximum(d, (at - 1.0) * (ew * 0.5))
    eye = cover(d, pix)
    skin = fr.colour("skin")
    sclera = tuple(0.8 * F32(0.94) + 0.2 * s for s in skin)
    paint(canvas, eye, sclera)

    gaze = fr.nuisance["gaze"]
    gx, gy = (gaze[:, i, None, None] for i in range(2))
    side = np.sign(fr.uf)
    iu = g["uu"] - gx * side
    iv = vv - gy
    r_iris = np.sqrt(iu * iu + iv * iv)
    radius = fr.p("iris_r")
    c = cover(r_iris - radius, pix)
    c *= eye
    paint(canvas, c, fr.colour("iris"))
    c = cover(r_iris - 0.45 * radius, pix)
    c *= eye
    darken(canvas, c, 0.92)
    iu += (0.35 * radius) * side  # the catch-light sits on the same side in both eyes
    iv += 0.4 * radius
    glint = np.sqrt(iu * iu + iv * iv)
    c = cover(glint - 0.2 * radius, pix)
    c *= eye
    paint(canvas, c * F32(0.8), (F32(1.0), F32(1.0), F32(1.0)))

    ends = smooth_window(t, -1.0, 1.08, 0.12)
    lash = line_cover(vv + upper + 0.006, 0.009, pix)
    lash *= ends
    lash *= fr.p("lash")
    darken(canvas, lash, 0.85)
    inner = smooth_window(t, -0.8, 0.85, 0.2)
    crease = line_cover(vv + upper + 0.022 + 0.35 * g["h_up"], 0.006, pix)
    crease *= inner
    darken(canvas, crease, 0.3)
    cheek = fr.c("cheek_raise", 0.0, 1.5)
    fold = line_cover(vv - lower - 0.006, 0.006, pix)
    fold *= inner
    darken(canvas, fold, 0.25)
    bag = line_cover(vv - lower - 0.04, 0.008, pix)
    bag *= inner
    bag *= 0.45 * cheek + 0.3 * fr.p("age")
    darken(canvas, bag, 0.5)


def draw_brows(canvas: np.ndarray, fr: Frame, g: dict[str, np.ndarray]) -> None:
    """Brows: AU1 lifts the inner ends, AU2 the outer ends, AU4 lowers and draws them together."""
    es, ew = fr.p("eye_sep"), fr.p("eye_w")
    inner = fr.c("brow_inner_raise", 0.0, 1.5)
    outer = fr.c("brow_outer_raise", 0.0, 1.5)
    lower = fr.c("brow_lower", 0.0, 1.5)
    b_in = es - 0.95 * ew - 0.06 * lower
    b_out = es + 1.2 * ew
    span = b_out - b_in
    s = (g["au"] - b_in) / span
    sc = np.clip(s, 0.0, 1.0)
    base = fr.p("eye_y") - fr.p("brow_gap")
    arch = fr.p("brow_arch") + 0.02 * outer
    y = sc * (1.0 - sc)
    y *= -4.0 * arch
    y += base
    y -= (0.12 * inner) * (1.0 - sc)
    y -= (0.11 * outer) * (0.25 + 0.75 * sc)
    y += (0.13 * lower) * (1.0 - 0.8 * sc)
    y -= fr.p("eye_slant") * g["uu"] * 0.5
    half = fr.p("brow_thick") * (0.62 - 0.25 * sc) * (1.0 + 0.25 * lower)
    # a lowered brow overhangs the eye: shade the band between brow and upper lid (a scowl)
    shadow = smooth_window(fr.v, y, fr.p("eye_y") - 0.02, 0.04)
    shadow *= smooth_window(s, 0.0, 1.0, 0.2)
    shadow *= np.minimum(lower, 1.2)
    darken(canvas, shadow, 0.22)
    d = np.abs(fr.v - y) - half
    d = np.maximum(d, (np.abs(s - 0.5) - 0.5) * span * 0.5)
    c = cover(d, fr.pix)
    c *= 0.92
    paint(canvas, c, fr.colour("brow"))


def draw_forehead(canvas: np.ndarray, fr: Frame) -> None:
    """Horizontal forehead wrinkles (raised brows, age) and vertical furrows (lowered brows)."""
    inner = fr.control("brow_inner_raise")
    outer = fr.control("brow_outer_raise")
    raise_ = np.clip(np.maximum(inner, outer) - 0.15, 0.0, 1.2)
    strength = 0.55 * raise_ + 0.5 * np.maximum(fr.identity["age"] - 0.5, 0.0)
    on_subset(canvas, fr, strength > 0.05, _wrinkles)
    on_subset(canvas, fr, fr.control("brow_lower") > 0.1, _furrows)


def _wrinkles(canvas: np.ndarray, fr: Frame) -> None:
    inner = fr.c("brow_inner_raise", 0.0, 1.2)
    outer = fr.c("brow_outer_raise", 0.0, 1.2)
    strength = 0.55 * np.clip(np.maximum(inner, outer) - 0.15, 0.0, 1.2)
    strength += 0.5 * np.maximum(fr.p("age") - 0.5, 0.0)
    top = fr.p("eye_y") - fr.p("brow_gap") - 0.13 - 0.1 * inner
    w = fr.v + 0.3 * fr.uf * fr.uf
    ridge = stripes(w - top, 0.055, fr.pix, sharpness=3.0)
    ridge *= smooth_window(fr.v, top - 0.17, top - 0.03, 0.06)
    half = 0.06 + 0.22 * outer
    ridge *= smooth_window(fr.uf, -half, half, 0.12)
    ridge *= np.minimum(strength, 1.0)
    darken(canvas, ridge, 0.35)


def _furrows(canvas: np.ndarray, fr: Frame) -> None:
    lower = fr.c("brow_lower", 0.0, 1.2)
    top = fr.p("eye_y") - fr.p("brow_gap") - 0.06
    c = line_cover(np.abs(fr.uf) - 0.032, 0.008, fr.pix)
    c *= smooth_window(fr.v, top + 0.04, fr.p("eye_y") - 0.05, 0.04)
    c *= lower
    darken(canvas, c, 0.35)
    # the skin bunched between the brows
    b = cover(ellipse(fr.uf, fr.v, 0.0, top + 0.05, 0.06, 0.06), fr.pix * F32(0.15))
    b *= lower
    darken(canvas, b, 0.12)


def draw_nose(canvas: np.ndarray, fr: Frame) -> None:
    """Nostrils, alar creases, shadow under the nose, tip highlight, and AU9 wrinkles."""
    pix = fr.pix
    un = fr.uf - 0.12 * np.sin(fr.p("yaw"))
    aun = np.abs(un)
    ny, nw = fr.p("nose_y"), fr.p("nose_w")
    wrinkle = fr.c("nose_wrinkle", 0.0, 1.5)
    lift = 0.025 * wrinkle
    soft = pix * F32(0.25)
    shadow = cover(ellipse(un, fr.v, 0.0, ny + 0.02 - lift, 0.07 * nw, 0.02), soft)
    darken(canvas, shadow, 0.15)
    tip = cover(ellipse(un, fr.v, 0.0, ny - 0.045 - lift, 0.035 * nw, 0.03), soft)
    darken(canvas, tip, -0.12)
    nostril = cover(ellipse(aun, fr.v, 0.036 * nw, ny - lift, 0.021 * nw, 0.011), pix)
    darken(canvas, nostril, 0.6)
    wing = line_cover(ellipse(aun, fr.v, 0.045 * nw, ny - 0.012 - lift, 0.035 * nw, 0.03), 0.005, pix)
    wing *= smooth_window(aun, 0.055 * nw, 1.0, 0.015)
    darken(canvas, wing, 0.35)
    on_subset(canvas, fr, fr.control("nose_wrinkle") > 0.1, _nose_wrinkles)


def _nose_wrinkles(canvas: np.ndarray, fr: Frame) -> None:
    wrinkle = fr.c("nose_wrinkle", 0.0, 1.5)
    un = fr.uf - 0.12 * np.sin(fr.p("yaw"))
    aun = np.abs(un)
    ey, ny = fr.p("eye_y"), fr.p("nose_y")
    w = fr.v - 0.7 * aun
    r = stripes(w - ey, 0.045, fr.pix, sharpness=3.0)
    r *= smooth_window(fr.v, ey + 0.01, ey + 0.4 * (ny - ey), 0.04)
    r *= smooth_window(aun, 0.0, 0.05, 0.04)
    r *= np.minimum(wrinkle, 1.0)
    darken(canvas, r, 0.3)


def draw_cheeks(canvas: np.ndarray, fr: Frame, mouth_half_width: np.ndarray) -> None:
    """Raised cheeks (AU6) and the nasolabial folds deepened by smiles, AU9/AU10 and age."""
    au = np.abs(fr.uf)
    cheek = fr.c("cheek_raise", 0.0, 1.5)
    es, ny, my = fr.p("eye_sep"), fr.p("nose_y"), fr.p("mouth_y")
    pull = fr.c("lip_corner_pull", 0.0, 1.5)
    up_lip = fr.c("upper_lip_raise", 0.0, 1.5)
    wrinkle = fr.c("nose_wrinkle", 0.0, 1.5)
    apple = ellipse(au, fr.v, es + 0.02, ny - 0.01 - 0.03 * cheek, 0.11, 0.075)
    apple = cover(apple, fr.pix * F32(0.15))
    apple *= 0.5 * cheek
    skin = fr.colour("skin")
    paint(canvas, apple, (skin[0] * 1.08 + 0.04, skin[1] * 0.96, skin[2] * 0.96))

    u0 = 0.075 * fr.p("nose_w")
    v0 = ny - 0.035 - 0.02 * wrinkle
    u1 = mouth_half_width + 0.05
    v1 = my + 0.02
    q = (fr.v - v0) / (v1 - v0)
    qc = np.clip(q, 0.0, 1.0)
    bow = 1.0 - (1.0 - qc) * (1.0 - qc)
    fold_u = u0 + (u1 - u0) * bow
    c = line_cover(au - fold_u, 0.007, fr.pix)
    c *= smooth_window(q, 0.0, 0.85, 0.15)
    strength = 0.05 + 0.75 * pull + 0.5 * up_lip + 0.4 * wrinkle + 0.3 * fr.p("age") + 0.2 * cheek
    c *= np.minimum(strength, 1.2)
    darken(canvas, c, 0.28)
