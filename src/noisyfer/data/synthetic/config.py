"""The simulator's settings (:class:`SynthConfig`), their validation and the class prior.

Everything that changes the generated images or labels is a field here, so the JSON of a config
(stored in the dataset's ``meta.json``) fully describes a dataset, and its hash names the cache entry.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

from ...errors import UserError
from ..classes import BASIC7, BASIC8

#: Bumped whenever a change of the code changes what a given config generates (invalidates caches).
GENERATOR_VERSION = 1

#: RAF-DB basic-expression training-set counts (Li et al., 2017), in the simulator's class order.
RAFDB_TRAIN_COUNTS: dict[str, int] = {
    "neutral": 2524,
    "happiness": 4772,
    "sadness": 1982,
    "surprise": 1290,
    "fear": 281,
    "disgust": 717,
    "anger": 705,
}
#: RAF-DB has no contempt class; 8-class work gets a small one, as AffectNet's contempt is (~1%).
RAFDB_CONTEMPT_COUNT = 150

_PRIOR_NAMES = ("rafdb", "balanced")

#: Published accuracy of the valence/arousal estimator LDLVA used for its pseudo VA (Toisoul et al.,
#: "Estimation of continuous valence and arousal levels from faces in naturalistic conditions",
#: Nature Machine Intelligence 2021; the 8-class EmoNet on the cleaned AffectNet test set, as its
#: public README reports: valence CCC 0.82, RMSE 0.29; arousal CCC 0.75, RMSE 0.27).
PUBLISHED_VA_CCC: dict[str, float] = {"valence": 0.82, "arousal": 0.75}
#: (valence, arousal) noise std that gives the pseudo VA :data:`PUBLISHED_VA_CCC` against the true VA
#: (with the shrinkage 0.25 and the class bias; solved by bisection on 50,000 simulated faces).
PUBLISHED_PSEUDO_VA_NOISE: tuple[float, float] = (0.135, 0.041)
#: The pseudo-VA noise before issue 14 (one std for both): valence CCC 0.83, arousal CCC 0.67.
LEGACY_PSEUDO_VA_NOISE = 0.12


class SynthConfigError(UserError):
    """An invalid :class:`SynthConfig` field; ``field`` and ``detail`` let a caller name its own option
    (``--num-train``, ``data.num_train``) instead of the field, see :meth:`renamed`."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"SynthConfig.{field} {detail}")
        self.field = field
        self.detail = detail

    def renamed(self, names: Mapping[str, str]) -> UserError:
        """The same error as ``<option>: <detail>``, the option named by ``names[field]``."""
        if self.field not in names:
            return self
        return UserError(f"{names[self.field]}: {self.detail}")


@dataclass
class SynthConfig:
    """Settings of the FER simulator.

    Parameters
    ----------
    num_train, num_test
        Number of faces in the ``train`` and ``test`` splits (``num_train >= 1``, ``num_test >= 0``).
    image_size
        Side of the square RGB images in pixels, 32..224.
    num_classes
        7 (``BASIC7``) or 8 (``BASIC8``, adds contempt).
    seed
        Non-negative integer; the output is a deterministic function of the config.
    ambiguity
        Share of faces (0..1) whose expression blends two classes.
    class_counts
        Class prior: ``"rafdb"`` (RAF-DB's training-set imbalance), ``"balanced"``, or one
        non-negative relative weight per class in class order. Each split holds exactly the
        largest-remainder rounding of ``prior * size`` faces per class.
    annotators
        Crowd annotators per face (1..100); each is drawn from a pool of ``annotator_pool`` people
        (default ``4 * annotators``) with individual confusion and bias.
    annotator_error
        Mean share (0..0.9) of a crowd annotator's labels that deviate from what they perceived.
    blend_random_pair
        Share (0..1) of blended faces whose second class is an arbitrary one instead of a typical
        confusion partner (fear-surprise, disgust-anger, sadness-neutral, happiness-neutral, ...).
    intensity_min, intensity_max
        Range (0..1) of the expression intensity: 0 subtle, 1 exaggerated.
    roll_max_deg, yaw_max_deg
        Largest head roll (0..45) and yaw (0..45) in degrees.
    scale_jitter, shift_max
        Relative face-size jitter (0..0.3) and largest face-centre shift (0..0.3, image half-widths).
    lighting
        Strength (0..1) of the directional light against the ambient one.
    p_glasses, p_sunglasses, p_hand, p_mask, p_clutter, p_blur
        Probabilities (0..1) of clear glasses, sunglasses, a hand in front of the face, a surgical
        mask, a cluttered background and defocus blur.
    noise_max
        Largest sensor-noise standard deviation (0..0.2, fraction of the intensity range).
    pseudo_va_noise, pseudo_va_shrinkage
        Error model of the pseudo valence/arousal estimator: noise std (0..1; one number for both, or
        a (valence, arousal) pair) and shrinkage toward the prior mean (0..1); a fixed
        class-correlated bias is added (see ``expressions``). The default noise,
        :data:`PUBLISHED_PSEUDO_VA_NOISE`, gives the published CCC of the estimator LDLVA used
        (:data:`PUBLISHED_VA_CCC`); :data:`LEGACY_PSEUDO_VA_NOISE` (0.12) is the level before issue 14.
    """

    num_train: int = 10000
    num_test: int = 2000
    image_size: int = 64
    num_classes: int = 7
    seed: int = 0
    ambiguity: float = 0.3
    class_counts: Any = "rafdb"
    annotators: int = 10
    annotator_pool: int | None = None
    annotator_error: float = 0.2
    blend_random_pair: float = 0.15
    intensity_min: float = 0.0
    intensity_max: float = 1.0
    roll_max_deg: float = 12.0
    yaw_max_deg: float = 25.0
    scale_jitter: float = 0.08
    shift_max: float = 0.06
    lighting: float = 0.5
    p_glasses: float = 0.12
    p_sunglasses: float = 0.03
    p_hand: float = 0.05
    p_mask: float = 0.04
    p_clutter: float = 0.5
    p_blur: float = 0.3
    noise_max: float = 0.03
    pseudo_va_noise: Any = PUBLISHED_PSEUDO_VA_NOISE
    pseudo_va_shrinkage: float = 0.25

    def __post_init__(self) -> None:
        _int_field(self, "num_train", 1, 10_000_000)
        _int_field(self, "num_test", 0, 10_000_000)
        _int_field(self, "image_size", 32, 224)
        if self.num_classes not in (7, 8) or isinstance(self.num_classes, bool):
            raise SynthConfigError("num_classes", f"must be 7 or 8, got {self.num_classes!r}")
        _int_field(self, "seed", 0, 2**63 - 1)
        _int_field(self, "annotators", 1, 100)
        if self.annotator_pool is not None:
            _int_field(self, "annotator_pool", self.annotators, 100_000)
        for name, hi in (
            ("ambiguity", 1.0),
            ("annotator_error", 0.9),
            ("blend_random_pair", 1.0),
            ("intensity_min", 1.0),
            ("intensity_max", 1.0),
            ("roll_max_deg", 45.0),
            ("yaw_max_deg", 45.0),
            ("scale_jitter", 0.3),
            ("shift_max", 0.3),
            ("lighting", 1.0),
            ("p_glasses", 1.0),
            ("p_sunglasses", 1.0),
            ("p_hand", 1.0),
            ("p_mask", 1.0),
            ("p_clutter", 1.0),
            ("p_blur", 1.0),
            ("noise_max", 0.2),
            ("pseudo_va_shrinkage", 1.0),
        ):
            _float_field(self, name, 0.0, hi)
        self.pseudo_va_noise = _noise_field(self.pseudo_va_noise)
        if self.intensity_min > self.intensity_max:
            raise SynthConfigError(
                "intensity_min", f"({self.intensity_min}) must not exceed intensity_max ({self.intensity_max})"
            )
        if self.p_glasses + self.p_sunglasses > 1.0:
            raise SynthConfigError("p_glasses", "+ p_sunglasses must be at most 1")
        self.class_counts = _normalise_class_counts(self.class_counts, self.num_classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        """``BASIC7`` or ``BASIC8``."""
        return BASIC7 if self.num_classes == 7 else BASIC8

    @property
    def pool_size(self) -> int:
        """Number of distinct crowd annotators."""
        return self.annotator_pool if self.annotator_pool is not None else 4 * self.annotators

    def class_prior(self) -> np.ndarray:
        """Class probabilities (float64, sums to 1) in class order."""
        return class_prior(self.class_counts, self.num_classes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields (``class_counts`` tuples become lists)."""
        d = asdict(self)
        for key in ("class_counts", "pseudo_va_noise"):
            if isinstance(d[key], tuple):
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SynthConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`UserError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(
                f"unknown SynthConfig field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**dict(data))

    def stable_hash(self) -> str:
        """16 hex digits identifying what this config generates (fields + generator version)."""
        payload = json.dumps(
            {"generator_version": GENERATOR_VERSION, "config": self.to_dict()}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _noise_field(value: Any) -> float | tuple[float, float]:
    """``pseudo_va_noise``: a number in 0..1 (kept a float: the configs before issue 14 hash as they did)
    or a (valence, arousal) pair of them (a tuple)."""
    def one(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0.0 <= v <= 1.0:
            raise SynthConfigError("pseudo_va_noise", f"must be a number in 0..1 or a (valence, arousal) pair of "
                                   f"them, got {value!r}")
        return float(v)

    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SynthConfigError("pseudo_va_noise", f"a pair needs 2 values (valence, arousal), got {value!r}")
        return (one(value[0]), one(value[1]))
    return one(value)


def _int_field(cfg: SynthConfig, name: str, lo: int, hi: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise SynthConfigError(name, f"must be an integer in {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise SynthConfigError(name, f"must be in {lo}..{hi}, got {value}")
    setattr(cfg, name, int(value))


def _float_field(cfg: SynthConfig, name: str, lo: float, hi: float) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise SynthConfigError(name, f"must be a number in {lo}..{hi}, got {value!r}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise SynthConfigError(name, f"must be in {lo}..{hi}, got {value}")
    setattr(cfg, name, float(value))


def _normalise_class_counts(value: Any, num_classes: int) -> str | tuple[float, ...]:
    if isinstance(value, str):
        if value not in _PRIOR_NAMES:
            raise SynthConfigError(
                "class_counts", f"must be 'rafdb', 'balanced' or {num_classes} relative weights, got '{value}'"
            )
        return value
    try:
        weights = tuple(float(w) for w in value)
    except (TypeError, ValueError):
        raise SynthConfigError(
            "class_counts", f"must be 'rafdb', 'balanced' or {num_classes} relative weights, got {value!r}"
        ) from None
    if len(weights) != num_classes:
        raise SynthConfigError(
            "class_counts", f"has {len(weights)} weights, expected {num_classes} (one per class, in class order)"
        )
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise SynthConfigError("class_counts", f"weights must be finite, >= 0 and not all 0, got {weights}")
    return weights


def class_prior(class_counts: str | tuple[float, ...], num_classes: int) -> np.ndarray:
    """Class probabilities for a ``class_counts`` setting (see :class:`SynthConfig`)."""
    names = BASIC7 if num_classes == 7 else BASIC8
    if class_counts == "balanced":
        weights = np.ones(num_classes)
    elif class_counts == "rafdb":
        counts = {**RAFDB_TRAIN_COUNTS, "contempt": RAFDB_CONTEMPT_COUNT}
        weights = np.array([counts[n] for n in names], dtype=np.float64)
    else:
        weights = np.asarray(class_counts, dtype=np.float64)
    return weights / weights.sum()


def exact_class_counts(prior: np.ndarray, total: int) -> np.ndarray:
    """Per-class counts summing to ``total``: floor of ``prior * total``, then the largest remainders
    (ties to the lower class index) get one more."""
    raw = np.asarray(prior, dtype=np.float64) * total
    counts = np.floor(raw).astype(np.int64)
    missing = int(total - counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:missing]] += 1
    return counts
