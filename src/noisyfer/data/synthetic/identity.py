"""Random identities (who the face is) and nuisances (how it was photographed).

Both are dicts of per-face arrays, first dimension N (float32 unless noted; colours are (N, 3) RGB in
0..1). Lengths are in *face units*: the face is about 1.3 units wide and 1.7 tall, origin near the
eyes' level, u to the viewer's right, v downward.

Identity: ``age`` (0 child .. 1 elderly: grey hair, wrinkles, thinner lips; children get rounder
faces and larger eyes), ``face_w``/``face_h``/``jaw`` (half sizes and jaw taper), ``skin``,
``hair`` and ``hair_style`` (int64: bald, short, long), ``hairline``, ``hair_part``, ``eye_sep``
(half distance between the eyes), ``eye_y``/``eye_w``/``eye_h``/``eye_slant``, ``iris_r`` and
``iris``, ``lash``, ``brow_gap``/``brow_thick``/``brow_arch``/``brow``, ``nose_y``/``nose_w``,
``mouth_y``/``mouth_w``, ``lip_upper``/``lip_lower``/``lips``, ``cloth``.

Nuisance: ``shift_x``/``shift_y`` (image half-widths), ``scale``, ``roll``/``yaw`` (radians),
``gaze`` (N, 2), ``light`` (N, 3 unit vector) and ``light_strength``, background ``bg0``/``bg1``/
``bg_angle`` and ``clutter`` (bool) with ``clutter_xy``/``clutter_size``/``clutter_round``/
``clutter_rgb`` (N, CLUTTER_SHAPES, ...), ``glasses`` (int64: none, clear, sun) and ``frame``,
``mask`` (bool) and ``mask_rgb``, ``hand`` (bool) with ``hand_xy``/``hand_angle``/``hand_size``,
``blur`` (Gaussian sigma in pixels at 64 px, 0: sharp), ``noise`` (std), ``gain``, ``contrast``,
``white_balance`` (N, 3).
"""

from __future__ import annotations

import numpy as np

#: Skin tones from light to dark (sRGB 0..1); a face interpolates between neighbours.
SKIN_TONES = np.array(
    [
        [1.00, 0.87, 0.77],
        [0.95, 0.78, 0.66],
        [0.88, 0.68, 0.54],
        [0.78, 0.55, 0.40],
        [0.63, 0.42, 0.29],
        [0.45, 0.29, 0.19],
        [0.32, 0.21, 0.14],
    ]
)
HAIR_COLOURS = np.array(
    [
        [0.10, 0.08, 0.08],  # black
        [0.24, 0.16, 0.11],  # dark brown
        [0.43, 0.29, 0.18],  # brown
        [0.78, 0.64, 0.40],  # blond
        [0.58, 0.27, 0.13],  # auburn
    ]
)
HAIR_P = np.array([0.35, 0.28, 0.17, 0.12, 0.08])
IRIS_COLOURS = np.array(
    [
        [0.22, 0.13, 0.08],  # dark brown
        [0.40, 0.25, 0.12],  # brown
        [0.30, 0.45, 0.60],  # blue
        [0.35, 0.45, 0.28],  # green
    ]
)
CLUTTER_SHAPES = 5

HAIR_BALD, HAIR_SHORT, HAIR_LONG = 0, 1, 2
GLASSES_NONE, GLASSES_CLEAR, GLASSES_SUN = 0, 1, 2


def _u(rng: np.random.Generator, lo: float, hi: float, n: int | tuple) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


def _pick(rng: np.random.Generator, palette: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    idx = rng.choice(len(palette), size=n, p=p)
    return palette[idx]


def sample_identities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` identities: face shape, skin, hair, eyes, brows, nose, mouth, age, clothes."""
    age = rng.beta(1.6, 2.4, n)
    child = np.clip((0.18 - age) / 0.18, 0.0, 1.0)  # 1 for the youngest faces
    tone = rng.uniform(0.0, len(SKIN_TONES) - 1, n)
    lo = np.floor(tone).astype(int)
    hi = np.minimum(lo + 1, len(SKIN_TONES) - 1)
    frac = (tone - lo)[:, None]
    skin = (1 - frac) * SKIN_TONES[lo] + frac * SKIN_TONES[hi]
    skin = skin * rng.uniform(0.96, 1.04, (n, 3))

    hair = _pick(rng, HAIR_COLOURS, HAIR_P, n)
    grey = np.clip((age - 0.55) / 0.4, 0.0, 1.0)[:, None]
    hair = (1 - grey) * hair + grey * np.array([0.72, 0.72, 0.70])
    style = rng.choice(3, size=n, p=[0.08, 0.5, 0.42])
    bangs = rng.random(n) < 0.2
    hairline = np.where(bangs, rng.uniform(-0.52, -0.46, n), rng.uniform(-0.8, -0.6, n))

    dark_skin = tone / (len(SKIN_TONES) - 1)
    iris_p = np.stack(
        [0.45 + 0.4 * dark_skin, 0.25 + 0.1 * dark_skin, 0.2 * (1 - dark_skin), 0.1 * (1 - dark_skin)],
        1,
    )
    iris = IRIS_COLOURS[_rows(rng, iris_p / iris_p.sum(1, keepdims=True))]
    brow = hair * 0.6 + 0.4 * np.minimum(hair, skin * 0.35)
    lip_red = np.array([0.75, 0.30, 0.30])
    lip_mix = rng.uniform(0.25, 0.55, n)[:, None]
    lips = (skin * 0.82) * (1 - lip_mix) + lip_red * (skin.mean(1, keepdims=True) + 0.1) * lip_mix
    cloth = rng.uniform(0.05, 0.9, (n, 3))

    f32 = np.float32
    return {
        "age": age.astype(f32),
        "face_w": (rng.uniform(0.58, 0.68, n) * (1 + 0.05 * child)).astype(f32),
        "face_h": _u(rng, 0.80, 0.88, n),
        "jaw": (rng.uniform(0.1, 0.32, n) * (1 - 0.5 * child)).astype(f32),
        "skin": np.clip(skin, 0, 1).astype(f32),
        "hair": hair.astype(f32),
        "hair_style": style.astype(np.int64),
        "hairline": hairline.astype(f32),
        "hair_part": _u(rng, -0.25, 0.25, n),
        "eye_sep": _u(rng, 0.22, 0.26, n),
        "eye_y": _u(rng, -0.08, -0.04, n),
        "eye_w": (rng.uniform(0.085, 0.1, n) * (1 + 0.12 * child)).astype(f32),
        "eye_h": (rng.uniform(0.038, 0.048, n) * (1 + 0.15 * child)).astype(f32),
        "eye_slant": _u(rng, -0.1, 0.15, n),
        "iris_r": _u(rng, 0.036, 0.043, n),
        "iris": iris.astype(f32),
        "lash": _u(rng, 0.55, 1.0, n),
        "brow_gap": _u(rng, 0.11, 0.14, n),
        "brow_thick": (rng.uniform(0.032, 0.052, n) * (1 - 0.25 * child)).astype(f32),
        "brow_arch": _u(rng, 0.01, 0.035, n),
        "brow": brow.astype(f32),
        "nose_y": (rng.uniform(0.17, 0.22, n) - 0.02 * child).astype(f32),
        "nose_w": (rng.uniform(0.9, 1.2, n) * (1 - 0.15 * child)).astype(f32),
        "mouth_y": _u(rng, 0.40, 0.45, n),
        "mouth_w": _u(rng, 0.16, 0.2, n),
        "lip_upper": (rng.uniform(0.022, 0.034, n) * (1 - 0.3 * grey[:, 0])).astype(f32),
        "lip_lower": (rng.uniform(0.028, 0.044, n) * (1 - 0.3 * grey[:, 0])).astype(f32),
        "lips": np.clip(lips, 0, 1).astype(f32),
        "cloth": cloth.astype(f32),
    }


def sample_nuisances(
    rng: np.random.Generator,
    n: int,
    *,
    roll_max_deg: float,
    yaw_max_deg: float,
    scale_jitter: float,
    shift_max: float,
    lighting: float,
    p_glasses: float,
    p_sunglasses: float,
    p_hand: float,
    p_mask: float,
    p_clutter: float,
    p_blur: float,
    noise_max: float,
) -> dict[str, np.ndarray]:
    """Draw ``n`` capture conditions: pose, framing, light, background, occluders, blur, noise."""
    f32 = np.float32
    k = CLUTTER_SHAPES
    azimuth = rng.uniform(0.8 * np.pi, 2.2 * np.pi, n)  # mostly from above
    elevation = rng.uniform(0.3, 1.1, n)  # angle between light and the view axis
    light = np.stack(
        [np.sin(elevation) * np.cos(azimuth), np.sin(elevation) * np.sin(azimuth), np.cos(elevation)],
        1,
    )
    glasses_u = rng.random(n)
    glasses = np.where(
        glasses_u < p_sunglasses,
        GLASSES_SUN,
        np.where(glasses_u < p_sunglasses + p_glasses, GLASSES_CLEAR, GLASSES_NONE),
    )
    blurred = rng.random(n) < p_blur
    frame_dark = rng.random(n) < 0.7
    frame = np.where(
        frame_dark[:, None], rng.uniform(0.02, 0.2, (n, 3)), rng.uniform(0.2, 0.8, (n, 3))
    )
    mask_palette = np.array(
        [[0.62, 0.78, 0.9], [0.93, 0.93, 0.93], [0.12, 0.12, 0.14], [0.35, 0.5, 0.7]]
    )
    return {
        "shift_x": _u(rng, -shift_max, shift_max, n),
        "shift_y": _u(rng, -shift_max, shift_max, n),
        "scale": (1.0 + rng.uniform(-scale_jitter, scale_jitter, n)).astype(f32),
        "roll": np.deg2rad(rng.uniform(-roll_max_deg, roll_max_deg, n)).astype(f32),
        "yaw": np.deg2rad(rng.uniform(-yaw_max_deg, yaw_max_deg, n)).astype(f32),
        "gaze": np.clip(rng.normal(0, 0.012, (n, 2)), -0.025, 0.025).astype(f32),
        "light": light.astype(f32),
        "light_strength": (lighting * rng.uniform(0.4, 1.0, n)).astype(f32),
        "bg0": rng.uniform(0.05, 0.95, (n, 3)).astype(f32),
        "bg1": rng.uniform(0.05, 0.95, (n, 3)).astype(f32),
        "bg_angle": _u(rng, 0, 2 * np.pi, n),
        "clutter": (rng.random(n) < p_clutter),
        "clutter_xy": _u(rng, -1.1, 1.1, (n, k, 2)),
        "clutter_size": _u(rng, 0.08, 0.55, (n, k, 2)),
        "clutter_round": rng.random((n, k)) < 0.5,
        "clutter_rgb": _muted(rng, (n, k)),
        "glasses": glasses.astype(np.int64),
        "frame": frame.astype(f32),
        "mask": rng.random(n) < p_mask,
        "mask_rgb": mask_palette[rng.integers(0, len(mask_palette), n)].astype(f32),
        "hand": rng.random(n) < p_hand,
        "hand_xy": np.stack([rng.uniform(-0.45, 0.45, n), rng.uniform(0.35, 0.75, n)], 1).astype(f32),
        "hand_angle": _u(rng, -0.7, 0.7, n),
        "hand_size": _u(rng, 0.85, 1.1, n),
        "blur": np.where(blurred, rng.uniform(0.4, 1.1, n), 0.0).astype(f32),
        "noise": _u(rng, 0.0, noise_max, n),
        "gain": _u(rng, 0.8, 1.15, n),
        "contrast": _u(rng, 0.8, 1.15, n),
        "white_balance": _u(rng, 0.93, 1.07, (n, 3)),
    }


def _muted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random colours of everyday objects: mostly desaturated, some vivid."""
    colour = rng.uniform(0.0, 1.0, shape + (3,))
    grey = rng.uniform(0.15, 0.9, shape + (1,))
    keep = rng.uniform(0.15, 0.8, shape + (1,))
    return (grey + keep * (colour - grey)).clip(0, 1).astype(np.float32)


def _rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0])[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(1), probs.shape[1] - 1)
