"""Datasets: the on-disk format, the FER simulator and the registered dataset readers."""

from .format import COLUMNS, FERData, load_dataset, load_split, read_meta, save_dataset

__all__ = ["COLUMNS", "FERData", "load_dataset", "load_split", "read_meta", "save_dataset"]
