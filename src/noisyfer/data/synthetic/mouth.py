"""The mouth: lips, opening, teeth, lip line, corner dimple and the shadow under the lower lip.

Along the mouth, ``t = (uf - centre) / half_width`` runs from -1 (viewer's left corner) to 1. The
centre line ``yc(t) = mouth_y - lift * t^2`` bends up for a smile (AU12) and down for AU15; AU14
lifts only the ``t > 0`` corner. The inner lip edges leave the centre line by ``open_up`` and
``open_down`` (jaw drop AU26, upper-lip raise AU10, lip stretch AU20), and the lips' thickness
shrinks when pressed (AU23/24).
"""

from __future__ import annotations

import numpy as np

from .features import darken
from .frame import Frame
from .shapes import F32, cover, ellipse, line_cover, paint, smooth_window

MOUTH_INSIDE = (F32(0.24), F32(0.06), F32(0.07))
TEETH = (F32(0.93), F32(0.91), F32(0.85))


def mouth_half_width(fr: Frame) -> np.ndarray:
    """Half width (B, 1, 1) of the mouth after the expression."""
    pull = fr.c("lip_corner_pull", 0.0, 1.5)
    stretch = fr.c("lip_stretch", 0.0, 1.5)
    press = fr.c("lip_press", 0.0, 1.5)
    jaw = fr.c("jaw_drop", 0.0, 1.5)
    uni = fr.c("lip_corner_unilateral", 0.0, 1.5)
    rounding = jaw * np.clip(1.0 - stretch - pull, 0.0, 1.0)
    gain = 1.0 + 0.22 * pull + 0.35 * stretch - 0.2 * press - 0.25 * rounding
    return fr.p("mouth_w") * gain + 0.02 * uni


def draw_mouth(canvas: np.ndarray, fr: Frame, half_width: np.ndarray) -> None:
    """Draw the mouth of every face of the batch."""
    pix = fr.pix
    pull = fr.c("lip_corner_pull", 0.0, 1.5)
    depress = fr.c("lip_corner_depress", 0.0, 1.5)
    uni = fr.c("lip_corner_unilateral", 0.0, 1.5)
    stretch = fr.c("lip_stretch", 0.0, 1.5)
    press = fr.c("lip_press", 0.0, 1.5)
    jaw = fr.c("jaw_drop", 0.0, 1.5)
    up_lip = fr.c("upper_lip_raise", 0.0, 1.5)
    chin = fr.c("chin_raise", 0.0, 1.5)
    my = fr.p("mouth_y")
    w = half_width
    centre = 0.03 * uni

    t = (fr.uf - centre) / w
    t2 = t * t
    t4 = t2 * t2
    at = np.abs(t)
    e = np.maximum(1.0 - t2, 0.0)
    round_ = np.maximum(1.0 - t4, 0.0)
    right = (t > 0).astype(F32)

    lift = 0.095 * pull - 0.08 * depress - 0.015 * stretch + 0.1 * uni * right
    yc = my - lift * t2
    yc -= (0.012 * chin) * e
    open_scale = 1.0 - 0.85 * np.minimum(press, 1.0)
    open_up = (0.02 * jaw + 0.05 * up_lip) * open_scale * round_
    open_dn = np.maximum((0.22 * jaw + 0.03 * stretch) * round_ - 0.015 * chin * e, 0.0)
    open_dn *= open_scale
    upper_in = yc - open_up
    lower_in = yc + open_dn

    thin = 1.0 - 0.3 * np.minimum(stretch, 1.0)
    t_up = fr.p("lip_upper") * (1.0 - 0.65 * np.minimum(press, 1.0)) * thin * (0.3 + 0.7 * round_)
    t_lo = (
        fr.p("lip_lower")
        * (1.0 - 0.6 * np.minimum(press, 1.0))
        * (1.0 + 0.4 * chin)
        * thin
        * (0.25 + 0.75 * round_)
    )
    corner = (at - 1.0) * (w * 0.4)

    # shadow under the lower lip, then the lips, the opening and the teeth
    sh = cover(ellipse(fr.uf, fr.v, centre, my + 0.07 + 0.22 * jaw, w * 0.55, 0.03), pix * F32(0.2))
    darken(canvas, sh, 0.15)
    d = np.maximum(upper_in - t_up - fr.v, fr.v - lower_in - t_lo)
    d = np.maximum(d, corner)
    c = cover(d, pix)
    c *= 0.9
    paint(canvas, c, fr.colour("lips"))

    d_open = np.maximum(upper_in - fr.v, fr.v - lower_in)
    d_open = np.maximum(d_open, corner + 0.03 * w)
    c = cover(d_open, pix)
    paint(canvas, c, MOUTH_INSIDE)
    upper_teeth = np.maximum(d_open, fr.v - upper_in - 0.035 - 0.01 * pull)
    upper_teeth = np.maximum(upper_teeth, (at - 0.8) * w * 0.5)
    c = cover(upper_teeth, pix)
    paint(canvas, c, TEETH)
    lower_show = np.clip(stretch + 0.6 * up_lip - 0.3, 0.0, 1.0)
    lower_teeth = np.maximum(d_open, lower_in - 0.03 - fr.v)
    lower_teeth = np.maximum(lower_teeth, (at - 0.65) * w * 0.5)
    c = cover(lower_teeth, pix)
    c *= lower_show
    paint(canvas, c, TEETH)

    line = line_cover(fr.v - yc, 0.005, pix)
    line *= smooth_window(t, -1.02, 1.02, 0.06)
    darken(canvas, line, 0.6)
    # AU14 dimple at the raised corner, and mouth-corner creases of smiles
    dimple = cover(
        ellipse(fr.uf, fr.v, centre + w + 0.015, my - 0.1 * uni - 0.005, 0.01, 0.03), pix * F32(0.4)
    )
    dimple *= np.minimum(uni, 1.0)
    darken(canvas, dimple, 0.45)
    chin_bulge = ellipse(fr.uf, fr.v, centre, my + 0.16 + 0.22 * jaw, 0.08, 0.04)
    chin_bulge = cover(chin_bulge, pix * F32(0.15))
    chin_bulge *= np.minimum(chin, 1.0)
    darken(canvas, chin_bulge, 0.12)
