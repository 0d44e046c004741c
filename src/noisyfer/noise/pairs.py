"""Class pair maps of asymmetric noise, resolved by class name against a dataset's own class order.

The default pairs are the RAF-DB confusions the NCCTFER paper uses. They are written with class
*names*, so they mean the same thing for every dataset order (simulator/AffectNet, RAF-DB, FER2013).
"""

from __future__ import annotations

import numbers
import re
from typing import Mapping, Sequence

from ..data.classes import canonical_class_name
from ..errors import UserError

#: NCCTFER's asymmetric noise on RAF-DB: source class -> class its label is flipped to.
DEFAULT_ASYMMETRIC_PAIRS: dict[str, str] = {
    "surprise": "anger",
    "fear": "surprise",
    "disgust": "anger",
    "happiness": "neutral",
    "sadness": "neutral",
    "anger": "happiness",
    "neutral": "sadness",
}

_INDEX = re.compile(r"[0-9]+")


def resolve_pairs(
    pairs: Mapping[object, object] | None, class_names: Sequence[str]
) -> tuple[dict[int, int], list[str]]:
    """Turn a pair map into ``{source index: target index}`` for ``class_names``.

    Parameters
    ----------
    pairs
        ``None`` for :data:`DEFAULT_ASYMMETRIC_PAIRS`, or a map whose keys and values are class names
        (any alias :func:`~noisyfer.data.classes.canonical_class_name` knows, e.g. ``"Happy"``) or
        class indices (ints, or digit strings as JSON keys come).
    class_names
        The dataset's class names, index = label value.

    Returns
    -------
    index_pairs, notes
        The resolved map and, for the default map only, notes on default pairs the dataset cannot
        use (a source or target class it lacks), which go into the noise JSON.

    Raises
    ------
    UserError
        A custom map naming an unknown class or index, a class paired with itself, or a source
        class given twice (e.g. ``"happy"`` and ``"happiness"``).
    """
    if pairs is None:
        return _resolve_default(class_names)
    if not isinstance(pairs, Mapping):
        raise UserError(f"noise.pairs must be a map source class -> target class, got {type(pairs).__name__}")
    if not pairs:
        raise UserError("noise.pairs is empty; give at least one pair or leave it unset for the defaults")
    lookup = _NameLookup(class_names)
    resolved: dict[int, int] = {}
    for key, value in pairs.items():
        src = lookup.index(key)
        dst = lookup.index(value)
        if src == dst:
            raise UserError(f"noise.pairs: class '{class_names[src]}' is paired with itself ({key!r} -> {value!r})")
        if src in resolved:
            raise UserError(f"noise.pairs: class '{class_names[src]}' is given twice as a source")
        resolved[src] = dst
    return resolved, []


def _resolve_default(class_names: Sequence[str]) -> tuple[dict[int, int], list[str]]:
    try:
        canonical = [canonical_class_name(n) for n in class_names]
    except UserError as exc:
        raise UserError(
            f"the default asymmetric pairs are given by expression name, but the dataset's classes "
            f"are not all expression names ({exc}); pass noise.pairs with class indices"
        ) from None
    position = {name: i for i, name in enumerate(canonical)}
    resolved: dict[int, int] = {}
    notes: list[str] = []
    for src, dst in DEFAULT_ASYMMETRIC_PAIRS.items():
        if src not in position:
            continue
        if dst not in position:
            notes.append(f"default pair {src} -> {dst} unused: the dataset has no class '{dst}'")
            continue
        resolved[position[src]] = position[dst]
    return resolved, notes


class _NameLookup:
    """Index of a class given by name or index, with errors naming ``noise.pairs``."""

    def __init__(self, class_names: Sequence[str]):
        self.class_names = list(class_names)
        self._canonical: dict[str, int] | None = None

    def index(self, key: object) -> int:
        if isinstance(key, bool):
            raise UserError(f"noise.pairs: {key!r} is not a class name or index")
        if isinstance(key, numbers.Integral) or (isinstance(key, str) and _INDEX.fullmatch(key.strip())):
            idx = int(key)
            if not 0 <= idx < len(self.class_names):
                raise UserError(
                    f"noise.pairs: class index {idx} is outside 0..{len(self.class_names) - 1} "
                    f"(classes: {', '.join(self.class_names)})"
                )
            return idx
        if not isinstance(key, str):
            raise UserError(f"noise.pairs: {key!r} is not a class name or index")
        if key in self.class_names:
            return self.class_names.index(key)
        try:
            return self._canonical_index()[canonical_class_name(key)]
        except (KeyError, UserError):
            raise UserError(
                f"noise.pairs: the dataset has no class '{key}' (classes: {', '.join(self.class_names)})"
            ) from None

    def _canonical_index(self) -> dict[str, int]:
        if self._canonical is None:
            self._canonical = {}
            for i, name in enumerate(self.class_names):
                try:
                    self._canonical[canonical_class_name(name)] = i
                except UserError:
                    continue  # a non-expression class can still be addressed by its exact name or index
        return self._canonical
