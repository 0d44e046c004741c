"""Datasets: the on-disk format, the FER simulator and the registered dataset readers."""

from . import datasets  # noqa: F401  (registers the datasets)
from . import readers  # noqa: F401
from .datasets import create_dataset
from .format import COLUMNS, FERData, load_dataset, load_split, read_meta, save_dataset

__all__ = ["COLUMNS", "FERData", "create_dataset", "load_dataset", "load_split", "read_meta", "save_dataset"]
