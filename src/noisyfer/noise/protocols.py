"""Synthetic label-noise protocols for training labels, seeded and vectorised.

==============  ==========================================================================  =============
kind            what happens to each training label                                          flip rate
==============  ==========================================================================  =============
``none``        nothing                                                                      0
``symmetric``   with probability p, replaced by a class drawn uniformly from the *other*     p
                classes (SCN / EAC convention)
``uniform``     with probability p, replaced by a class drawn uniformly from *all* classes   p (1 - 1/C)
                (ELR convention; may keep its class)
``asymmetric``  with probability p, replaced by its paired class (NCCTFER RAF-DB pairs by    p x share of
                default); classes without a pair are unchanged                               paired samples
``instance``    flips more often when the sample is ambiguous, to the classes it resembles   p
                (see :mod:`noisyfer.noise.instance`)
``crowd``       replaced by the crowd's majority vote (``crowd_label``); no rate             disagreement
==============  ==========================================================================  =============

``exact=True`` replaces the independent per-sample draws by exact counts: ``round(p * n_c)``
samples of each class ``c`` (chosen by a seeded permutation) are flipped (symmetric, asymmetric) or
relabelled (uniform); instance noise flips exactly ``round(p * N)`` samples. Only training labels
should ever go through these functions: test labels stay clean.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError
from .instance import check_probs, instance_noise
from .pairs import resolve_pairs
from .result import (
    NoisyLabels,
    check_class_names,
    check_kind,
    check_labels,
    check_rate,
    check_seed,
    exact_count,
    transition_matrix,
)


def apply_noise(
    labels: np.ndarray | Sequence[int],
    *,
    kind: str,
    rate: float,
    seed: int,
    class_names: Sequence[str],
    exact: bool = False,
    pairs: Mapping[object, object] | None = None,
    probs: np.ndarray | None = None,
    crowd_labels: np.ndarray | None = None,
) -> NoisyLabels:
    """Corrupt training ``labels`` with one noise protocol.

    Parameters
    ----------
    labels
        int (N,): clean (or given) training labels, index into ``class_names``.
    kind
        One of :data:`~noisyfer.noise.NOISE_KINDS` (table in the module doc).
    rate
        Noise rate p in [0, 1); must be 0 for ``none`` and ``crowd``, which do not use it.
    seed
        Seed of the :func:`numpy.random.default_rng` generator: same inputs and seed, same labels.
    class_names
        Class names of the dataset, index = label value; asymmetric pairs are resolved against them.
    exact
        Exact per-class counts instead of independent draws (symmetric, uniform, asymmetric, instance).
    pairs
        Asymmetric only: ``{source: target}`` by class name or index; default
        :data:`~noisyfer.noise.DEFAULT_ASYMMETRIC_PAIRS`.
    probs
        Instance only: float (N, C) per-sample class probabilities (``label_dist`` or softmax).
    crowd_labels
        Crowd only: int (N,) majority-vote labels.

    Returns
    -------
    NoisyLabels
        Noisy and original labels, realized rate and transition matrix, protocol parameters.

    Raises
    ------
    UserError
        Unknown kind, rate outside [0, 1), bad seed, invalid pairs / probs / crowd labels, or an
        option given to a kind that does not use it.
    """
    kind = check_kind(kind)
    rate = check_rate(rate, kind)
    seed = check_seed(seed)
    class_names = check_class_names(class_names)
    num_classes = len(class_names)
    original = check_labels(labels, num_classes)
    exact = _check_options(kind, exact=exact, pairs=pairs, probs=probs, crowd_labels=crowd_labels)
    rng = np.random.default_rng(seed)

    params: dict = {}
    if kind == "none":
        noisy = original.copy()
    elif kind == "symmetric":
        noisy, params = _symmetric(original, class_names, rate, exact, rng)
    elif kind == "uniform":
        noisy, params = _uniform(original, class_names, rate, exact, rng)
    elif kind == "asymmetric":
        index_pairs, notes = resolve_pairs(pairs, class_names)
        noisy, params = _asymmetric(original, index_pairs, class_names, rate, exact, rng)
        params = _pair_params(index_pairs, notes, class_names, original) | params
    elif kind == "instance":
        if probs is None:
            raise UserError("noise.kind 'instance' needs per-sample class probabilities (noise.probs)")
        checked = check_probs(probs, original.size, num_classes)
        noisy, params = instance_noise(original, checked, rate=rate, exact=exact, rng=rng)
    else:
        if crowd_labels is None:
            raise UserError("noise.kind 'crowd' needs the crowd's majority-vote labels (crowd_label)")
        noisy = check_labels(crowd_labels, num_classes, name="crowd_label").copy()
        if noisy.size != original.size:
            raise UserError(f"crowd_label has {noisy.size} samples, labels {original.size}")
        params = {"source": "crowd_label"}

    realized = float((noisy != original).mean()) if original.size else 0.0
    return NoisyLabels(
        labels=noisy,
        original=original,
        kind=kind,
        rate=rate,
        seed=seed,
        exact=exact,
        class_names=class_names,
        realized_rate=realized,
        expected_rate=_expected_rate(kind, rate, exact, original, noisy, num_classes, params),
        transition=transition_matrix(original, noisy, num_classes),
        params=params,
    )


def _check_options(kind: str, *, exact: object, pairs: object, probs: object, crowd_labels: object) -> bool:
    """Reject options the kind would ignore, so a misplaced setting is never silently dropped."""
    if not isinstance(exact, (bool, np.bool_)):
        raise UserError(f"noise.exact must be true or false, got {exact!r}")
    if exact and kind in ("none", "crowd"):
        raise UserError(f"noise.exact has no effect for noise.kind '{kind}'; leave it false")
    for option, value, owner in (("pairs", pairs, "asymmetric"), ("probs", probs, "instance"),
                                 ("crowd_labels", crowd_labels, "crowd")):
        if value is not None and kind != owner:
            raise UserError(f"noise.{option} is only used by noise.kind '{owner}', not '{kind}'")
    return bool(exact)


def _exact_selection(labels: np.ndarray, candidates: np.ndarray, rate: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Mask of exactly ``round(rate * n_c)`` samples per class ``c`` among ``candidates`` classes."""
    selected = np.zeros(labels.size, dtype=bool)
    counts = []
    for c in candidates:
        members = np.flatnonzero(labels == c)
        k = int(exact_count(rate, members.size))
        selected[rng.permutation(members)[:k]] = True
        counts.append(k)
    return selected, counts


def _select(labels: np.ndarray, classes: np.ndarray, rate: float, exact: bool,
            rng: np.random.Generator, class_names: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """Samples chosen for corruption among those labelled with one of ``classes``."""
    if exact:
        selected, counts = _exact_selection(labels, classes, rate, rng)
        return selected, {"selected_per_class": {class_names[c]: k for c, k in zip(classes, counts)}}
    selected = (rng.random(labels.size) < rate) & np.isin(labels, classes)
    return selected, {}


def _symmetric(labels, class_names, rate, exact, rng):
    num_classes = len(class_names)
    selected, params = _select(labels, np.arange(num_classes), rate, exact, rng, class_names)
    idx = np.flatnonzero(selected)
    noisy = labels.copy()
    # A shift by 1..C-1 modulo C is uniform over the other classes and never lands on the original.
    noisy[idx] = (labels[idx] + rng.integers(1, num_classes, size=idx.size)) % num_classes
    return noisy, params


def _uniform(labels, class_names, rate, exact, rng):
    num_classes = len(class_names)
    selected, params = _select(labels, np.arange(num_classes), rate, exact, rng, class_names)
    idx = np.flatnonzero(selected)
    noisy = labels.copy()
    noisy[idx] = rng.integers(0, num_classes, size=idx.size)
    params["num_relabelled"] = int(idx.size)
    return noisy, params


def _asymmetric(labels, index_pairs, class_names, rate, exact, rng):
    mapping = np.arange(len(class_names))
    for src, dst in index_pairs.items():
        mapping[src] = dst
    sources = np.array(sorted(index_pairs), dtype=np.int64)
    selected, params = _select(labels, sources, rate, exact, rng, class_names)
    noisy = np.where(selected, mapping[labels], labels)
    return noisy, params


def _pair_params(index_pairs: dict[int, int], notes: list[str], class_names: tuple[str, ...],
                 labels: np.ndarray) -> dict:
    unpaired = [class_names[c] for c in range(len(class_names)) if c not in index_pairs]
    params = {
        "pairs": {class_names[s]: class_names[d] for s, d in sorted(index_pairs.items())},
        "unpaired_classes": unpaired,
        "unpaired_samples": int((~np.isin(labels, list(index_pairs))).sum()),
    }
    if unpaired:
        params["note"] = "samples of unpaired classes keep their labels"
    if notes:
        params["default_pairs_unused"] = notes
    return params


def _expected_rate(kind, rate, exact, original, noisy, num_classes, params) -> float:
    n = original.size
    if n == 0:
        return 0.0
    if kind == "none":
        return 0.0
    if kind == "crowd":
        return float((noisy != original).mean())
    if kind == "instance":
        return float(exact_count(rate, n)) / n if exact else rate
    if kind == "asymmetric":
        paired = n - params["unpaired_samples"]
    else:
        paired = n
    if exact:
        share = sum(params["selected_per_class"].values()) / n
    else:
        share = rate * paired / n
    return share * (1.0 - 1.0 / num_classes) if kind == "uniform" else share
