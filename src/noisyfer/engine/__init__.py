"""The training engine: one loop for every method, with the data, optimizer and run-directory plumbing."""

from .augment import Augmenter
from .build import build_experiment, create_method, resolve_device
from .trainer import RunResult, Trainer, resume, train

__all__ = ["Augmenter", "RunResult", "Trainer", "build_experiment", "create_method", "resolve_device", "resume", "train"]
