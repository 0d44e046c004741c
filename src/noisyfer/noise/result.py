"""The result of a noise protocol (:class:`NoisyLabels`), the realized transition matrix and the
argument checks every protocol shares.

Errors name the configuration field a user sets (``noise.rate``, ``noise.seed``, ...), since that is
where a wrong value comes from, whether it was typed on the command line or in a config file.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import UserError

#: Every protocol :func:`~noisyfer.noise.apply_noise` knows, in the order the documentation lists them.
NOISE_KINDS = ("none", "symmetric", "uniform", "asymmetric", "instance", "crowd")
#: Kinds a saved label file may record: the protocols, and ``file`` (labels read from a dataset's own
#: noisy-label file, e.g. RAF-DB's circulated noise lists).
LABEL_KINDS = NOISE_KINDS + ("file",)

#: Kinds whose outcome does not depend on ``rate``; they require ``rate == 0`` so that a rate given by
#: mistake is reported instead of silently ignored.
RATELESS_KINDS = ("none", "crowd")

#: ``format`` / ``version`` written into the JSON sidecar of a noisy-label file.
SIDECAR_FORMAT = "noisyfer-noisy-labels"
SIDECAR_VERSION = 1


@dataclass
class NoisyLabels:
    """Training labels after a noise protocol, with everything needed to reproduce and audit them.

    Parameters
    ----------
    labels
        int64 (N,): the noisy labels.
    original
        int64 (N,): the labels the protocol started from.
    kind, rate, seed, exact
        The protocol and its settings (see :func:`~noisyfer.noise.apply_noise`).
    class_names
        Class names, index = label value.
    realized_rate
        Fraction of samples whose label changed.
    expected_rate
        Fraction expected to change under the protocol: ``rate`` for symmetric and instance noise,
        ``rate * (1 - 1/C)`` for uniform noise, ``rate`` times the share of paired samples for
        asymmetric noise; exact counts where ``exact`` fixes them; the realized rate for crowd labels.
    transition
        float64 (C, C): row ``i`` is the distribution of new labels among samples whose original
        label is ``i`` (rows sum to 1; a class without samples has an identity row).
    params
        Protocol details (the pair map, per-class counts, the instance-noise floor, ...), JSON-ready.
    """

    labels: np.ndarray
    original: np.ndarray
    kind: str
    rate: float
    seed: int
    exact: bool
    class_names: tuple[str, ...]
    realized_rate: float
    expected_rate: float
    transition: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.original = np.asarray(self.original, dtype=np.int64)
        self.class_names = tuple(self.class_names)
        self.transition = np.asarray(self.transition, dtype=np.float64)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def flipped(self) -> np.ndarray:
        """bool (N,): True where the noisy label differs from the original one."""
        return self.labels != self.original

    def to_json(self) -> dict[str, Any]:
        """Everything but the label arrays, as JSON-ready builtins (the sidecar of a label file)."""
        return {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "kind": self.kind,
            "rate": float(self.rate),
            "seed": int(self.seed),
            "exact": bool(self.exact),
            "class_names": list(self.class_names),
            "num_samples": len(self),
            "num_changed": int(self.flipped.sum()),
            "realized_rate": float(self.realized_rate),
            "expected_rate": float(self.expected_rate),
            "transition": self.transition.tolist(),
            "params": self.params,
            "original_sha256": labels_sha256(self.original),
        }


def labels_sha256(labels: np.ndarray) -> str:
    """SHA-256 of ``labels`` stored as little-endian int64: identifies the clean labels a file came from."""
    data = np.ascontiguousarray(np.asarray(labels), dtype="<i8")
    return hashlib.sha256(data.tobytes()).hexdigest()


def transition_matrix(original: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Realized (C, C) transition matrix: row ``i`` = distribution of ``noisy`` where ``original == i``.

    Rows sum to 1; a class with no samples in ``original`` gets an identity row (nothing moved).

    Examples
    --------
    >>> transition_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3).tolist()
    [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    original = check_labels(original, num_classes, name="original labels")
    noisy = check_labels(noisy, num_classes, name="noisy labels")
    if original.shape != noisy.shape:
        raise UserError(f"original labels have {original.size} samples, noisy labels {noisy.size}")
    counts = np.bincount(original * num_classes + noisy, minlength=num_classes * num_classes)
    counts = counts.reshape(num_classes, num_classes).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0
    counts[empty] = np.eye(num_classes)[empty]
    totals[empty] = 1.0
    return counts / totals


def check_kind(kind: object) -> str:
    """``kind`` if it names a protocol, else :class:`UserError` listing :data:`NOISE_KINDS`."""
    if isinstance(kind, str) and kind in NOISE_KINDS:
        return kind
    hint = difflib.get_close_matches(str(kind), NOISE_KINDS, n=1)
    did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise UserError(f"unknown noise.kind '{kind}'{did_you_mean}; expected one of {', '.join(NOISE_KINDS)}")


def check_rate(rate: object, kind: str) -> float:
    """``rate`` as a float in [0, 1); 0 for kinds that do not use it."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(float(rate)):
        raise UserError(f"noise.rate must be a number in [0, 1), got {rate!r}")
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise UserError(f"noise.rate must be in [0, 1), got {rate}")
    if kind in RATELESS_KINDS and rate != 0.0:
        raise UserError(f"noise.rate is not used by noise.kind '{kind}'; set it to 0 (got {rate})")
    return rate


def check_seed(seed: object) -> int:
    """``seed`` as a non-negative int (what :func:`numpy.random.default_rng` accepts)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise UserError(f"noise.seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(class_names)
    if len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise UserError(f"class_names must be at least two strings, got {list(names)}")
    if len(set(names)) != len(names):
        raise UserError(f"class_names has duplicates: {list(names)}")
    return names


def check_labels(labels: object, num_classes: int, *, name: str = "labels") -> np.ndarray:
    """``labels`` as a 1-D int64 array with values in ``0..num_classes-1``."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise UserError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.flatnonzero((arr < 0) | (arr >= num_classes))
    if bad.size:
        raise UserError(
            f"{name}: value {int(arr[bad[0]])} of sample {int(bad[0])} is outside 0..{num_classes - 1}"
        )
    return arr


def exact_count(rate: float, n: np.ndarray | int) -> np.ndarray:
    """``round(rate * n)`` with halves rounded up (not to even), so counts do not depend on parity."""
    return np.floor(rate * np.asarray(n, dtype=np.float64) + 0.5).astype(np.int64)
