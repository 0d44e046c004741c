"""noisyfer: facial expression recognition trained on noisy labels.

Python API (the command line is a thin layer over it)::

    import noisyfer
    cfg = noisyfer.config_from_args(None, ["method=ce", "data=synthetic", "noise.kind=symmetric",
                                           "noise.rate=0.3", "model.backbone=resnet_small"])
    result = noisyfer.train(cfg)
    print(result.summary["accuracy_last"], result.run_dir)

The names below are loaded on first use (PEP 562), so ``import noisyfer`` and ``noisyfer --help`` do
not import torch; the registries import the built-in methods, backbones and datasets on their first
lookup.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS = {
    "BACKBONES": "noisyfer.registry",
    "DATASETS": "noisyfer.registry",
    "METHODS": "noisyfer.registry",
    "RunConfig": "noisyfer.config",
    "config_from_args": "noisyfer.config",
    "resolve_config": "noisyfer.config",
    "create_backbone": "noisyfer.models",
    "create_dataset": "noisyfer.data.datasets",
    "create_method": "noisyfer.engine",
    "resume": "noisyfer.engine",
    "train": "noisyfer.engine",
    # a Recognizer of a run directory or exported bundle: noisyfer.load("RUN_DIR").predict("photo.jpg")
    "load": "noisyfer.inference.recognizer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:  # a subpackage not imported yet: ``noisyfer.methods``
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'noisyfer' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
