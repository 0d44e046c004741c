"""Canonical expression class names and the explicit orders of the benchmark datasets.

noisyfer names classes in lower case (``neutral``, ``happiness``, ...). A dataset may have any classes
(``positive``, ``negative``, ``neutral``; 5 or 12 of them): :func:`class_name` maps the usual spellings of
the expressions to their canonical names and keeps every other name as it is, lower-cased. Every dataset keeps its own
order (RAF-DB, FER2013 and AffectNet all differ); converting between orders is always explicit, through
:func:`class_order_mapping`, never by position.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import UserError

#: The simulator's order, which is also AffectNet's (8 classes with contempt).
BASIC7 = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
BASIC8 = BASIC7 + ("contempt",)

#: Names used by the datasets' own documentation, mapped to the canonical names.
ALIASES = {
    "happy": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    "contemptuous": "contempt",
}


def canonical_class_name(name: str) -> str:
    """Lower-case canonical name of ``name`` (``"Happy"`` -> ``"happiness"``)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in BASIC8:
        raise UserError(f"unknown expression class '{name}'; expected one of {', '.join(BASIC8)}")
    return key


def class_name(name: str) -> str:
    """``name`` as noisyfer writes it: an expression's canonical name (``"Happy"`` -> ``"happiness"``),
    any other class name stripped and lower-cased (``" Positive"`` -> ``"positive"``).

    Raises
    ------
    UserError
        For an empty name.
    """
    key = str(name).strip().lower()
    if not key:
        raise UserError(f"empty class name {name!r}")
    return ALIASES.get(key, key)


def class_order_mapping(source: Sequence[str], target: Sequence[str]) -> list[int]:
    """``mapping[i]`` is the index in ``target`` of class ``source[i]``.

    Raises
    ------
    UserError
        When a source class has no counterpart in ``target``.
    """
    target_index = {class_name(n): i for i, n in enumerate(target)}
    mapping = []
    for name in source:
        key = class_name(name)
        if key not in target_index:
            raise UserError(f"class '{name}' has no counterpart in {list(target)}")
        mapping.append(target_index[key])
    return mapping
