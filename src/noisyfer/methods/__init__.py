"""Training methods. Importing this package registers every method."""

from . import ce  # noqa: F401  (registers the method)
from .base import Batch, Method, StepOutput, TrainingSetup
from .sample_state import SampleState

__all__ = ["Batch", "Method", "SampleState", "StepOutput", "TrainingSetup"]
