"""The training engine: one loop for every method, with the data, optimizer and run-directory plumbing."""

from .augment import Augmenter
from .build import build_experiment, create_method, resolve_device
from .launch import resume, train
from .trainer import RunResult, Trainer

__all__ = ["Augmenter", "RunResult", "Trainer", "build_experiment", "create_method", "resolve_device", "resume", "train"]
