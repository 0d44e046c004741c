"""Expression model: facial-action controls, class prototypes, blends, intensity and valence/arousal.

Controls
--------
A face's expression is a vector of :data:`CONTROLS`, each a facial-action-like deformation named
after the FACS action unit (AU) it imitates; 0 is the relaxed face, 1 a full action:

======================  ======  ===========================================================
control                 AU      effect in the renderer
======================  ======  ===========================================================
brow_inner_raise        1       inner brow ends up, central forehead wrinkles
brow_outer_raise        2       outer brow ends up, wide forehead wrinkles
brow_lower              4       brows down and drawn together, vertical furrow lines
upper_lid_raise         5       upper lid up: sclera shows above the iris
eye_aperture            7 / 43  -1 narrowed (lids tightened or drooping) .. +1 widened
cheek_raise             6       lower lid pushed up, cheeks lifted, crow's-feet side folds
nose_wrinkle            9       wrinkles across the nose bridge, nostrils raised
upper_lip_raise         10      upper lip lifted (teeth show), deep nasolabial folds
lip_corner_pull         12      lip corners up and out (smile)
lip_corner_depress      15      lip corners down
lip_corner_unilateral   R14     one (the viewer's right) lip corner up, with a dimple
lip_stretch             20      lips stretched horizontally, corners back
lip_press               23 / 24 lips pressed thin and narrowed
jaw_drop                26 / 27 mouth opened, chin lowered
chin_raise              17      lower lip pushed up and pouting
======================  ======  ===========================================================

Prototypes (:data:`PROTOTYPES`) follow Ekman & Friesen's descriptions (EMFACS): happiness 6+12
(with or without parted lips), sadness 1+4+15+17, surprise 1+2+5+26, fear 1+2+4+5+7+20+26,
disgust 9+10+15+17 with lowered brows, anger 4+5+7+23/24 (or an open, lip-raised variant),
contempt unilateral 14.

Valence and arousal
-------------------
Each class sits on Russell's circumplex at :data:`VA_COORDINATES` (valence, arousal), placed from
the angles of Russell (1980) and rounded::

    neutral (0.00, 0.00)    happiness (0.80, 0.40)   sadness (-0.70, -0.40)   surprise (0.15, 0.85)
    fear (-0.65, 0.75)      disgust (-0.70, 0.35)    anger (-0.60, 0.80)      contempt (-0.55, 0.25)

A face's true valence/arousal is the blend-weighted mean of its classes' coordinates times
``0.35 + 0.65 * intensity``, so it lies in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from ..classes import BASIC8

CONTROLS: tuple[str, ...] = (
    "brow_inner_raise",
    "brow_outer_raise",
    "brow_lower",
    "upper_lid_raise",
    "eye_aperture",
    "cheek_raise",
    "nose_wrinkle",
    "upper_lip_raise",
    "lip_corner_pull",
    "lip_corner_depress",
    "lip_corner_unilateral",
    "lip_stretch",
    "lip_press",
    "jaw_drop",
    "chin_raise",
)
CONTROL_INDEX = {name: i for i, name in enumerate(CONTROLS)}
NUM_CONTROLS = len(CONTROLS)

# class -> list of (variant weight, {control: value}); a face of the class picks one variant.
_VARIANTS: dict[str, list[tuple[float, dict[str, float]]]] = {
    "neutral": [(1.0, {})],
    "happiness": [
        (0.35, {"cheek_raise": 0.7, "lip_corner_pull": 1.0, "eye_aperture": -0.3}),
        (
            0.65,
            {"cheek_raise": 0.85, "lip_corner_pull": 1.0, "jaw_drop": 0.4, "eye_aperture": -0.35},
        ),
    ],
    "sadness": [
        (
            1.0,
            {
                "brow_inner_raise": 1.0,
                "brow_lower": 0.4,
                "eye_aperture": -0.45,
                "lip_corner_depress": 1.0,
                "chin_raise": 0.7,
            },
        )
    ],
    "surprise": [
        (
            1.0,
            {
                "brow_inner_raise": 1.0,
                "brow_outer_raise": 1.0,
                "upper_lid_raise": 1.0,
                "eye_aperture": 0.3,
                "jaw_drop": 1.0,
            },
        )
    ],
    "fear": [
        (
            1.0,
            {
                "brow_inner_raise": 1.0,
                "brow_outer_raise": 0.45,
                "brow_lower": 0.6,
                "upper_lid_raise": 1.0,
                "eye_aperture": 0.2,
                "lip_stretch": 1.0,
                "jaw_drop": 0.45,
                "lip_corner_depress": 0.25,
            },
        )
    ],
    "disgust": [
        (
            1.0,
            {
                "nose_wrinkle": 1.0,
                "upper_lip_raise": 1.0,
                "brow_lower": 0.6,
                "cheek_raise": 0.4,
                "eye_aperture": -0.5,
                "lip_corner_depress": 0.5,
                "chin_raise": 0.3,
            },
        )
    ],
    "anger": [
        (
            0.7,
            {
                "brow_lower": 1.0,
                "upper_lid_raise": 0.5,
                "eye_aperture": -0.45,
                "lip_press": 1.0,
                "chin_raise": 0.5,
            },
        ),
        (
            0.3,
            {
                "brow_lower": 1.0,
                "upper_lid_raise": 0.6,
                "eye_aperture": -0.35,
                "upper_lip_raise": 0.6,
                "jaw_drop": 0.4,
                "lip_press": 0.3,
            },
        ),
    ],
    "contempt": [
        (1.0, {"lip_corner_unilateral": 1.0, "eye_aperture": -0.2, "brow_lower": 0.1}),
    ],
}


def _variant_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(variant controls (V, K), variant class (V,), variant weight within its class (V,))."""
    rows, owner, weight = [], [], []
    for c, name in enumerate(BASIC8):
        for w, ctrl in _VARIANTS[name]:
            row = np.zeros(NUM_CONTROLS)
            for key, value in ctrl.items():
                row[CONTROL_INDEX[key]] = value
            rows.append(row)
            owner.append(c)
            weight.append(w)
    return np.array(rows), np.array(owner), np.array(weight)


VARIANT_CONTROLS, VARIANT_CLASS, VARIANT_WEIGHT = _variant_tables()

#: Mean control vector of each class (BASIC8 order), variant-weighted.
PROTOTYPES: np.ndarray = np.stack(
    [
        (VARIANT_CONTROLS[VARIANT_CLASS == c] * VARIANT_WEIGHT[VARIANT_CLASS == c, None]).sum(0)
        for c in range(len(BASIC8))
    ]
)

#: (valence, arousal) of each class on Russell's circumplex, BASIC8 order.
VA_COORDINATES: np.ndarray = np.array(
    [
        [0.00, 0.00],  # neutral
        [0.80, 0.40],  # happiness
        [-0.70, -0.40],  # sadness
        [0.15, 0.85],  # surprise
        [-0.65, 0.75],  # fear
        [-0.70, 0.35],  # disgust
        [-0.60, 0.80],  # anger
        [-0.55, 0.25],  # contempt
    ]
)

#: Class-correlated bias of the pseudo valence/arousal estimator (what VA regressors trained on
#: in-the-wild data tend to do: negative faces read less negative, high-arousal ones calmer).
PSEUDO_VA_BIAS: np.ndarray = np.array(
    [
        [-0.05, 0.05],  # neutral
        [-0.05, -0.10],  # happiness
        [0.10, 0.10],  # sadness
        [-0.10, -0.10],  # surprise
        [0.10, -0.15],  # fear
        [0.15, -0.05],  # disgust
        [0.05, -0.10],  # anger
        [0.15, 0.00],  # contempt
    ]
)

#: Pairs of classes that real datasets confuse, with their relative blend frequency.
CONFUSION_PAIRS: dict[tuple[str, str], float] = {
    ("fear", "surprise"): 1.0,
    ("disgust", "anger"): 1.0,
    ("sadness", "neutral"): 1.0,
    ("happiness", "neutral"): 1.0,
    ("anger", "sadness"): 0.6,
    ("contempt", "neutral"): 1.0,
    ("contempt", "disgust"): 0.7,
    ("contempt", "happiness"): 0.5,
}


def confusion_affinity(num_classes: int) -> np.ndarray:
    """Symmetric (C, C) matrix of :data:`CONFUSION_PAIRS` weights, zero diagonal."""
    names = BASIC8[:num_classes]
    aff = np.zeros((num_classes, num_classes))
    for (a, b), w in CONFUSION_PAIRS.items():
        if a in names and b in names:
            i, j = names.index(a), names.index(b)
            aff[i, j] = aff[j, i] = w
    return aff


def blend_partner_probs(num_classes: int, random_pair: float) -> np.ndarray:
    """Row c: probability of each second class for a blended face of dominant class c."""
    aff = confusion_affinity(num_classes)
    typical = aff / aff.sum(1, keepdims=True)
    uniform = (1.0 - np.eye(num_classes)) / (num_classes - 1)
    return (1.0 - random_pair) * typical + random_pair * uniform


def intensity_gain(intensity: np.ndarray) -> np.ndarray:
    """Multiplier of the control vector: 0.45 (subtle) at intensity 0, 1.2 (exaggerated) at 1."""
    return 0.45 + 0.75 * intensity


def true_valence_arousal(label_dist: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """(N, 2) valence/arousal: blend of the class coordinates, scaled by ``0.35 + 0.65 * intensity``."""
    c = label_dist.shape[1]
    va = label_dist @ VA_COORDINATES[:c]
    return va * (0.35 + 0.65 * intensity)[:, None]


def sample_expressions(
    rng: np.random.Generator,
    labels: np.ndarray,
    *,
    num_classes: int,
    ambiguity: float,
    random_pair: float,
    intensity_range: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Draw the expression of each face whose dominant class is ``labels``.

    Returns
    -------
    dict
        ``controls`` (N, K) float32, ``label_dist`` (N, C) float32, ``ambiguity`` (N,) float32 (share
        of the second class, 0 when not blended), ``second_label`` (N,) int64 (-1 when not blended),
        ``intensity`` (N,) float32.
    """
    n = labels.shape[0]
    blended = rng.random(n) < ambiguity
    partner_p = blend_partner_probs(num_classes, random_pair)
    second = _sample_rows(rng, partner_p[labels])
    share = rng.uniform(0.15, 0.45, n)
    share = np.where(blended, share, 0.0)
    second = np.where(blended, second, -1)

    lo, hi = intensity_range
    intensity = rng.uniform(lo, hi, n)

    first_ctrl = _class_controls(rng, labels)
    second_ctrl = _class_controls(rng, np.where(blended, second, labels))
    controls = (1.0 - share)[:, None] * first_ctrl + share[:, None] * second_ctrl
    controls = controls * intensity_gain(intensity)[:, None]
    # individual style: every face moves a little, even a neutral one
    controls = controls + rng.normal(0.0, 0.06, controls.shape)

    label_dist = np.zeros((n, num_classes))
    label_dist[np.arange(n), labels] = 1.0 - share
    label_dist[np.flatnonzero(blended), second[blended]] += share[blended]
    return {
        "controls": controls.astype(np.float32),
        "label_dist": label_dist.astype(np.float32),
        "ambiguity": share.astype(np.float32),
        "second_label": second.astype(np.int64),
        "intensity": intensity.astype(np.float32),
    }


def _class_controls(rng: np.random.Generator, classes: np.ndarray) -> np.ndarray:
    """One variant of each face's class, with a +-15% per-control spread."""
    variant_p = (VARIANT_CLASS[None, :] == classes[:, None]) * VARIANT_WEIGHT[None, :]
    variant = _sample_rows(rng, variant_p / variant_p.sum(1, keepdims=True))
    ctrl = VARIANT_CONTROLS[variant]
    return ctrl * rng.uniform(0.85, 1.15, ctrl.shape)


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1), vectorised."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(1), probs.shape[1] - 1)
