"""noisyfer: facial expression recognition trained on noisy labels.

Python API (the command line is a thin layer over it)::

    import noisyfer
    cfg = noisyfer.config_from_args(None, ["method=ce", "data=synthetic", "noise.kind=symmetric",
                                           "noise.rate=0.3", "model.backbone=resnet_small"])
    result = noisyfer.train(cfg)
    print(result.summary["accuracy_last"], result.run_dir)
"""

__version__ = "0.1.0"

from . import data, methods, models  # noqa: E402  (importing registers every component)
from .config import RunConfig, config_from_args, resolve_config  # noqa: E402
from .data.datasets import create_dataset  # noqa: E402
from .engine import create_method, resume, train  # noqa: E402
from .models import create_backbone  # noqa: E402
from .registry import BACKBONES, DATASETS, METHODS  # noqa: E402



def load(source, **options):
    """A :class:`~noisyfer.inference.recognizer.Recognizer` of a run directory or exported bundle:
    ``noisyfer.load("RUN_DIR").predict("photo.jpg")`` (options: see :func:`noisyfer.inference.recognizer.load`)."""
    from .inference.recognizer import load as load_recognizer  # imports OpenCV: only when used

    return load_recognizer(source, **options)


__all__ = [
    "BACKBONES", "DATASETS", "METHODS", "RunConfig", "config_from_args", "create_backbone", "create_dataset",
    "create_method", "load", "resolve_config", "resume", "train",
]
