"""Assemble a run from its configuration: device, data, training labels, backbone, method.

Shared by training, resuming and ``noisyfer eval``, so all three build exactly the same objects.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..data.datasets import create_dataset
from ..data.format import FERData
from ..errors import UserError
from ..methods.base import Method
from ..registry import METHODS
from .augment import Augmenter


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an unavailable CUDA request is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device: '{name}' requested but CUDA is not available on this machine")
    return device


def seed_everything(seed: int, *, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this set before its first use to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        if torch.cuda.is_available():
            # Ops without a deterministic CUDA kernel warn instead of failing the run.
            torch.use_deterministic_algorithms(True, warn_only=True)


def create_method(name: str, *, backbone: torch.nn.Module, num_classes: int, num_train: int, options: object,
                  augment: Augmenter, image_size: int) -> Method:
    """Instantiate the registered method ``name`` around ``backbone``."""
    cls = METHODS.get(name).obj
    return cls(backbone=backbone, num_classes=num_classes, num_train=num_train, options=options, augment=augment,
               image_size=image_size)


def make_training_labels(cfg: RunConfig, train: FERData):
    """The training labels of the run: a noise file, an injected protocol, or the dataset's own.

    A noise file is either noisyfer's (``index,label,original_label`` + JSON sidecar) or RAF-DB's line
    format (``train_00001.jpg 5``), matched to the training images by file name.
    """
    from ..data.readers.noisy_files import label_file_format, rafdb_noisy_labels
    from ..noise import load_noisy_labels, noise_from_dataset, with_noisy_labels

    if cfg.noise.file:
        if cfg.noise.kind != "none":
            raise UserError("noise.file and noise.kind are exclusive: a noise file already holds the labels")
        if label_file_format(cfg.noise.file) == "rafdb":
            return rafdb_noisy_labels(cfg.noise.file, train, on_bad=cfg.data.on_bad)
        labels = load_noisy_labels(cfg.noise.file, num_samples=len(train), num_classes=train.num_classes)
        with_noisy_labels(train, labels)  # refuses a file made from other labels or another class order
        return labels
    if cfg.noise.probs and not Path(cfg.noise.probs).is_file():
        raise UserError(f"noise.probs: file not found: {cfg.noise.probs}")
    return noise_from_dataset(train, kind=cfg.noise.kind, rate=cfg.noise.rate, seed=cfg.noise.seed,
                              exact=cfg.noise.exact, pairs=cfg.noise.pairs, probs=cfg.noise.probs)


@dataclass
class Experiment:
    """Everything a run is made of, built from its configuration."""

    config: RunConfig
    device: torch.device
    train: FERData
    test: FERData
    augment: Augmenter
    method: Method
    #: The reader's report of items left out under ``data.on_bad=skip`` (None if it keeps none).
    read_report: object = None
    #: A test split held out of the training images (fraction, seed, sizes), None when the dataset has one.
    held_out_test: dict | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[1])


def build_experiment(cfg: RunConfig, *, device: torch.device | None = None) -> Experiment:
    """Seed, load the data and build the method (weights initialised from ``cfg.seed``)."""
    from ..models import create_backbone

    device = device or resolve_device(cfg.device)
    seed_everything(cfg.seed, deterministic=cfg.train.deterministic)
    splits = create_dataset(cfg.data, cfg.data_options)
    train, test = splits["train"], splits["test"]
    if train.class_names != test.class_names:
        raise UserError(f"train and test splits disagree on classes: {train.class_names} vs {test.class_names}")
    if train.images.shape[1:] != test.images.shape[1:]:
        raise UserError(f"train and test images differ in size: {train.images.shape[1:]} vs {test.images.shape[1:]}")
    augment = Augmenter(cfg.augment, image_size=int(train.images.shape[1]))
    backbone = create_backbone(cfg.model.backbone, num_classes=None, pretrained=cfg.model.pretrained,
                               **cfg.model.options)
    method = create_method(cfg.method, backbone=backbone, num_classes=train.num_classes, num_train=len(train),
                           options=cfg.method_options, augment=augment, image_size=int(train.images.shape[1]))
    return Experiment(config=cfg, device=device, train=train, test=test, augment=augment, method=method.to(device),
                      read_report=getattr(splits, "report", None),
                      held_out_test=getattr(splits, "info", {}).get("test_split"))
