"""One registry per kind of component (methods, backbones, datasets), timm style.

A component registers itself with a decorator and, optionally, a dataclass of its options::

    @register_method("ce", options=CEOptions)
    class CrossEntropy(Method):
        ...

``create_method`` / ``create_backbone`` / ``create_dataset`` look the name up here. Unknown names
raise :class:`~noisyfer.errors.UserError` listing what is available, with a close-match hint.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import UserError


@dataclass(frozen=True)
class Entry:
    """A registered component: its name, the object (class or factory) and its options dataclass."""

    name: str
    obj: Any
    options: type | None
    summary: str


class Registry:
    """Name -> component mapping of one kind (``"method"``, ``"backbone"``, ``"dataset"``).

    ``builtins`` is the package whose import registers noisyfer's own components; it is imported on the
    first lookup (not when noisyfer is imported), so ``noisyfer --help`` and other paths that look nothing
    up never import torch.
    """

    def __init__(self, kind: str, *, builtins: str | None = None):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._builtins = builtins

    def _load_builtins(self) -> None:
        if self._builtins is not None:
            package, self._builtins = self._builtins, None
            importlib.import_module(package)

    def register(self, name: str, *, options: type | None = None) -> Callable[[Any], Any]:
        """Decorator registering ``obj`` under ``name``; ``options`` is its options dataclass."""

        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            doc = (getattr(obj, "__doc__", None) or "").strip()
            summary = doc.splitlines()[0] if doc else ""
            self._entries[name] = Entry(name=name, obj=obj, options=options, summary=summary)
            return obj

        return decorator

    def get(self, name: str) -> Entry:
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            hint = difflib.get_close_matches(str(name), self._entries, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise UserError(
                f"unknown {self.kind} '{name}'{did_you_mean}; available: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        self._load_builtins()
        return len(self._entries)


METHODS = Registry("method", builtins="noisyfer.methods")
BACKBONES = Registry("backbone", builtins="noisyfer.models")
DATASETS = Registry("dataset", builtins="noisyfer.data")

register_method = METHODS.register
register_backbone = BACKBONES.register
register_dataset = DATASETS.register
