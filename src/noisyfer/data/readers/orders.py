"""Class orders of the benchmark datasets and the explicit mapping from a dataset's label codes.

Every benchmark numbers its classes differently. A reader knows its dataset's codes (RAF-DB ``1`` =
surprise, FER2013 ``0`` = anger, AffectNet ``0`` = neutral, ...) and produces labels in a *class
order*: the dataset's own order by default, or any other named or listed order
(``data.class_order=affectnet``, ``data.class_order=[neutral, happiness, ...]``). The resolved order
is written back into the run's configuration as an explicit list, so ``config.yaml`` always shows which
index means which class.

=========  ==========================================================================
name       order (index 0, 1, ...)
=========  ==========================================================================
rafdb      surprise, fear, disgust, happiness, sadness, anger, neutral
fer2013    anger, disgust, fear, happiness, sadness, surprise, neutral
ferplus    neutral, happiness, surprise, sadness, anger, disgust, fear, contempt
affectnet  neutral, happiness, sadness, surprise, fear, disgust, anger, contempt
sfew       anger, disgust, fear, happiness, neutral, sadness, surprise (folder names sorted)
=========  ==========================================================================

A named order that lacks a class of the dataset (RAF-DB's and FER2013's have no contempt) gets it
appended at the end; classes the dataset does not have are left out.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...errors import UserError
from ..classes import BASIC7, BASIC8, canonical_class_name, class_name

RAFDB_ORDER = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
FER2013_ORDER = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FERPLUS_ORDER = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
AFFECTNET_ORDER = BASIC8
SFEW_ORDER = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")

NAMED_ORDERS: dict[str, tuple[str, ...]] = {
    "rafdb": RAFDB_ORDER,
    "fer2013": FER2013_ORDER,
    "ferplus": FERPLUS_ORDER,
    "affectnet": AFFECTNET_ORDER,
    "sfew": SFEW_ORDER,
    "basic": BASIC8,
}


def basic_classes(count: int, *, key: str = "data.classes") -> tuple[str, ...]:
    """The 7 basic expressions, or 8 with contempt, as a set in noisyfer's (AffectNet's) order."""
    if count == 7:
        return BASIC7
    if count == 8:
        return BASIC8
    raise UserError(f"{key}: expected 7 (basic expressions) or 8 (with contempt), got {count!r}")


def resolve_class_order(value: str | Sequence[str], native: Sequence[str], *,
                        key: str = "data.class_order") -> list[str]:
    """The explicit class order for ``value``: ``"native"``, a name of :data:`NAMED_ORDERS`, or a list.

    Parameters
    ----------
    value
        What the user set.
    native
        The dataset's own order; the result is a permutation of it.
    key
        Configuration key named in errors.

    Raises
    ------
    UserError
        An unknown order name, or a list that is not a permutation of the dataset's classes.
    """
    native = [class_name(n) for n in native]
    if isinstance(value, str):
        name = value.strip().lower()
        if name == "native":
            return list(native)
        if name not in NAMED_ORDERS:
            raise UserError(f"{key}: unknown order '{value}'; expected native, "
                            f"{', '.join(NAMED_ORDERS)} or a list of class names")
        order = [n for n in NAMED_ORDERS[name] if n in native]
        return order + [n for n in native if n not in order]
    try:
        order = [class_name(str(n)) for n in value]
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None
    if len(set(order)) != len(order):
        raise UserError(f"{key}: {list(value)} names a class twice")
    missing = [n for n in native if n not in order]
    extra = [n for n in order if n not in native]
    if missing or extra:
        raise UserError(f"{key}: {list(value)} must list exactly the dataset's classes {native}"
                        + (f"; missing {missing}" if missing else "") + (f"; not in the dataset {extra}" if extra else ""))
    return order


def _class_or_none(name: str) -> str | None:
    try:
        return canonical_class_name(name)
    except UserError:
        return None


def code_lookup(codes: Mapping[int, str], order: Sequence[str]) -> np.ndarray:
    """Array ``lut`` with ``lut[code]`` = index in ``order`` of the class of ``code``, -1 when excluded.

    ``codes`` maps every valid label code of a dataset to its name there; codes whose name is no
    expression class (AffectNet's ``none``, ``uncertain``, ``no-face``; FERPlus' ``unknown``, ``NF``)
    and classes missing from ``order`` (contempt in a 7-class run) map to -1.
    """
    index = {class_name(n): i for i, n in enumerate(order)}
    lut = np.full(max(codes) + 1, -1, dtype=np.int64)
    for code, name in codes.items():
        lut[code] = index.get(_class_or_none(name), -1)
    return lut


def describe_mapping(codes: Mapping[int, str], order: Sequence[str]) -> dict[str, str]:
    """``{"1": "surprise -> 0", "8": "none -> excluded", ...}``: the mapping, for a dataset's info."""
    lut = code_lookup(codes, order)
    return {str(code): f"{name} -> {'excluded' if lut[code] < 0 else int(lut[code])}"
            for code, name in sorted(codes.items())}
