"""Options shared by every reader (``data.class_order``, ``data.workers``) and the image size rule."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Sequence

from ...config import DataConfig
from .orders import resolve_class_order


@dataclass
class ReaderOptions(abc.ABC):
    """Options every reader has.

    Attributes
    ----------
    class_order
        ``native`` (the dataset's own order), a named order (``rafdb``, ``fer2013``, ``ferplus``,
        ``affectnet``, ``sfew``, ``basic``) or a list of class names. Resolved to the explicit list
        when the configuration is read, so the run's ``config.yaml`` shows index -> class (for
        classes found in the data, ``folder`` with ``classes: auto``, when the data is read: the dataset's
        ``meta.json``, the run's ``summary.json`` and every output then state the order).
    workers
        Processes decoding images when the cache is built (0: one per CPU core). Does not change
        the result.
    """

    class_order: list | str = "native"
    workers: int = 0

    @abc.abstractmethod
    def native_order(self) -> Sequence[str] | None:
        """The dataset's own class order (each reader's options define it); None when only the data
        knows it (then the reader resolves ``class_order`` with :meth:`resolve_order`)."""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: one per CPU core), got {self.workers}")
        native = self.native_order()
        if native is not None:
            self.class_order = resolve_class_order(self.class_order, native)

    def resolve_order(self, native: Sequence[str]) -> list[str]:
        """``class_order`` resolved against the classes found in the data (``native``)."""
        return resolve_class_order(self.class_order, native)


def image_size_of(config: DataConfig, default: int) -> int:
    """``data.image_size`` when set, else the reader's default (the dataset's native size)."""
    return int(config.image_size) if config.image_size else int(default)
