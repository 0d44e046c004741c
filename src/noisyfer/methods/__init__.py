"""Training methods. Importing this package imports every module in it, which registers the methods.

A new method is one file here (named after the method) that decorates its class with
``@register_method``; nothing else needs editing.
"""

import importlib
import pkgutil

from .base import Batch, Method, OptimizerSpec, ParamGroup, StepOutput, TrainingSetup
from .sample_state import SampleState

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Batch", "Method", "OptimizerSpec", "ParamGroup", "SampleState", "StepOutput", "TrainingSetup"]
