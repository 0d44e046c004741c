"""Occluders drawn over the face: glasses or sunglasses, a surgical mask, a hand."""

from __future__ import annotations

import numpy as np

from .features import darken
from .frame import Frame, on_subset
from .identity import GLASSES_NONE, GLASSES_SUN
from .shapes import F32, box, capsule, cover, ellipse, line_cover, paint, stripes

SUN_LENS = (F32(0.05), F32(0.05), F32(0.07))
STRAP = (F32(0.92), F32(0.92), F32(0.92))


def draw_occluders(canvas: np.ndarray, fr: Frame, face_distance) -> None:
    """Glasses, masks and hands on the faces that have them (``face_distance(frame)`` -> (B, S, S))."""
    on_subset(canvas, fr, fr.nuisance["glasses"] != GLASSES_NONE, _glasses)
    on_subset(canvas, fr, fr.nuisance["mask"], lambda cv, sub: _mask(cv, sub, face_distance(sub)))
    on_subset(canvas, fr, fr.nuisance["hand"], _hand)


def _glasses(canvas: np.ndarray, fr: Frame) -> None:
    au = np.abs(fr.uf)
    es, ew, ey = fr.p("eye_sep"), fr.p("eye_w"), fr.p("eye_y")
    half_w = ew + 0.04
    lens = ellipse(au, fr.v, es, ey + 0.005, half_w, 0.075)
    sun = (fr.nuisance["glasses"] == GLASSES_SUN).astype(F32)[:, None, None]
    c = cover(lens, fr.pix)
    tint = c * (0.9 * sun + 0.1 * (1.0 - sun))
    colour = tuple(sun * s + (1.0 - sun) * F32(1.0) for s in SUN_LENS)
    paint(canvas, tint, colour)
    thick = 0.009
    rim = line_cover(lens, thick, fr.pix)
    bridge = box(au, fr.v, 0.0, ey - 0.015, es - half_w + 0.01, thick)
    rim = np.maximum(rim, cover(bridge, fr.pix))
    reach = fr.p("face_w") + 0.02
    temple = box(au, fr.v, 0.5 * (es + half_w + reach), ey - 0.02, 0.5 * (reach - es - half_w), thick)
    temple = np.maximum(temple, np.abs(fr.u) - fr.p("face_w") - 0.02)  # uf saturates off the head
    rim = np.maximum(rim, cover(temple, fr.pix))
    paint(canvas, rim, fr.colour("frame"))


def _mask(canvas: np.ndarray, fr: Frame, face_dist: np.ndarray) -> None:
    ny, fw = fr.p("nose_y"), fr.p("face_w")
    rel = fr.uf / fw
    top = ny - 0.1 + 0.16 * rel * rel
    d = np.maximum(face_dist - 0.025, top - fr.v)
    c = cover(d, fr.pix)
    paint(canvas, c, fr.colour("mask_rgb"))
    pleats = stripes(fr.v - top, 0.09, fr.pix, sharpness=4.0)
    pleats *= c
    darken(canvas, pleats, 0.15)
    strap = line_cover(fr.v - (ny - 0.02 + 0.25 * (np.abs(rel) - 1.0)), 0.006, fr.pix)
    strap *= cover(box(np.abs(fr.u), fr.v, fw + 0.02, ny, 0.06, 0.2), fr.pix)
    paint(canvas, strap, STRAP)


def _hand(canvas: np.ndarray, fr: Frame) -> None:
    """A hand raised in front of the lower face: palm, four fingers, thumb, with outlines."""
    xy = fr.nuisance["hand_xy"]
    hx, hy = xy[:, 0, None, None], xy[:, 1, None, None]
    ang = fr.nuisance["hand_angle"].astype(np.float64)
    cos_a, sin_a = (np.cos(ang)[:, None, None].astype(F32), np.sin(ang)[:, None, None].astype(F32))
    k = fr.p("hand_size")
    du, dv = fr.u - hx, fr.v - hy
    hu = (cos_a * du + sin_a * dv) / k
    hv = (cos_a * dv - sin_a * du) / k
    pix = fr.pix * k
    skin = fr.colour("skin")
    outline = tuple(s * 0.6 for s in skin)
    fill = tuple(s * 0.97 for s in skin)
    edge = 0.012

    # fingers first: the palm drawn last draws the knuckle line across their roots
    shapes = [
        capsule(hu, hv, cu, top, 0.02, 0.044)
        for cu, top in ((-0.135, -0.36), (-0.045, -0.43), (0.045, -0.41), (0.13, -0.33))
    ]
    # thumb: a capsule in coordinates turned 0.8 rad, rooted at the palm's side
    tc, ts = np.float32(np.cos(0.8)), np.float32(np.sin(0.8))
    tu, tv = hu - 0.16, hv - 0.12
    shapes.append(capsule(tc * tu + ts * tv, tc * tv - ts * tu, 0.0, -0.22, 0.0, 0.05))
    shapes.append(ellipse(hu, hv, 0.0, 0.14, 0.2, 0.24))
    for d in shapes:
        paint(canvas, cover(d, pix), outline)
        paint(canvas, cover(d + edge, pix), fill)
