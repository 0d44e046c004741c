"""The interface every training method implements; the engine's one loop drives it.

A method is an ``nn.Module`` that owns its networks (backbone, heads, branches), its per-sample
state and its losses. The engine owns everything else: data order, batches on the device,
optimizer and schedule, mixed precision, evaluation, logging, checkpoints and resuming.

Per epoch the engine calls ``on_epoch_start``, then for each batch ``training_step`` (and steps the
optimizer on the returned loss), then ``on_epoch_end`` and evaluates ``predict`` on the test set.

A minimal method, cross-entropy with ELR-style per-sample targets, looks like this::

    @dataclass
    class EMAOptions:
        beta: float = 0.7

    @register_method("ema_ce", options=EMAOptions)
    class EMACrossEntropy(Method):
        '''Cross-entropy plus a consistency term to per-sample moving-average targets.'''

        def __init__(self, *, options, **common):
            super().__init__(options=options, **common)
            self.fc = nn.Linear(self.backbone.num_features, self.num_classes)
            self.state.register("target", torch.zeros(self.num_train, self.num_classes))

        def forward(self, images):
            return self.fc(self.backbone(images).features)

        def training_step(self, batch, *, epoch):
            logits = self(self.augment.train(batch.images))
            probs = logits.softmax(1).detach()
            old = self.state["target"][batch.indices]
            new = self.options.beta * old + (1 - self.options.beta) * probs
            self.state.update("target", batch.indices, new)
            loss = F.cross_entropy(logits, batch.labels) + soft_ce(logits, new)
            return StepOutput(loss=loss, logits=logits, logs={"target_max": new.max(1).values.mean()})

Hooks that a method may override: :meth:`setup` (once, with the training labels and columns:
neighbour lists, class counts), :meth:`on_epoch_start`, :meth:`on_epoch_end` (logs),
:meth:`param_groups` (learning rates per part, even a second optimizer), :meth:`predict`
(what inference uses: the main branch only, the mean head, ...) and :meth:`epoch_record`
(per-sample arrays saved each epoch, e.g. current labels, for later analysis).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from .sample_state import SampleState


@dataclass
class Batch:
    """One training batch, already on the method's device.

    Attributes
    ----------
    images
        uint8 (N, 3, H, W) as stored (contiguous), *not* augmented and not normalised: a
        method builds its views with ``self.augment`` (``train``, ``weak``, ``strong``, ``normalize``,
        ``geometric``, ``hflip``; ``to_float`` gives float in [0, 1]). The views also accept float
        images in [0, 1].
    labels
        int64 (N,): the training labels as given to the run (after any injected noise). Relabeling
        methods keep their own current labels in per-sample state.
    indices
        int64 (N,): dataset indices, the key of every per-sample state.
    columns
        Extra per-sample columns the method asked for in :attr:`Method.columns` (e.g. ``label_dist``).
    host_labels
        The same labels on the CPU, for decisions that must not wait on the device (e.g. DMUE
        skipping batches without two samples of every class).
    """

    images: Tensor
    labels: Tensor
    indices: Tensor
    columns: dict[str, Tensor] = field(default_factory=dict)
    host_labels: Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class StepOutput:
    """What :meth:`Method.training_step` returns.

    Attributes
    ----------
    loss
        Scalar tensor the engine back-propagates, or ``None`` to skip the optimizer step for this
        batch (e.g. DMUE skips batches lacking two samples of a class); skipped steps are counted
        in the epoch's ``train_skipped_steps``.
    logits
        Optional (N, C) predictions for the batch samples; the engine uses them for the running
        training accuracy against the given and the true labels (memorization).
    logs
        Scalars (floats or 0-d tensors) averaged over the epoch and logged; tensors stay on the
        device until the epoch ends, so logging costs no synchronisation.
    """

    loss: Tensor | None
    logits: Tensor | None = None
    logs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingSetup:
    """Facts about the training run given to :meth:`Method.setup` once, before the first epoch."""

    labels: Tensor
    columns: Mapping[str, np.ndarray]
    class_names: tuple[str, ...]
    epochs: int
    steps_per_epoch: int
    device: torch.device
    #: Fraction of the training labels the run's noise protocol (or noise file) changed; 0 when the
    #: dataset's labels are used as given.
    label_noise_rate: float = 0.0
    #: ``fetch(indices)`` -> :class:`Batch` of any training samples (images as in ``Batch``, given labels),
    #: e.g. to forward a sample's neighbours.
    fetch: Callable[[Tensor], "Batch"] | None = None


class Method(nn.Module, abc.ABC):
    """Base class of training methods (see the module docstring for the contract).

    Parameters
    ----------
    backbone
        Feature extractor from :func:`noisyfer.models.create_backbone` without a classifier; its
        output has ``feature_map`` (N, D, h, w) and ``features`` (N, D).
    num_classes, num_train
        Number of classes, and of training samples (the size of per-sample state).
    image_size
        Side of the (square) input images, for heads whose size depends on the feature map.
    options
        The method's options dataclass instance (``None`` if it registered none).
    augment
        The run's :class:`~noisyfer.engine.augment.Augmenter` (batch augmentation on tensors).
    """

    #: Dataset columns (see ``noisyfer.data.format.COLUMNS``) put into ``Batch.columns``.
    columns: tuple[str, ...] = ()
    #: Overrides for very short smoke runs (the registry-wide contract test), for methods whose
    #: paper schedule assumes long training (e.g. DMUE's ramp-up: ``("method.ramp_epoch=1",)``).
    smoke_overrides: tuple[str, ...] = ()

    def __init__(self, *, backbone: nn.Module, num_classes: int, num_train: int, options: Any, augment: Any,
                 image_size: int):
        super().__init__()
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.num_train = int(num_train)
        self.image_size = int(image_size)
        self.options = options
        self.augment = augment
        self.state = SampleState(num_train)

    # -- the contract ---------------------------------------------------------------------
    def setup(self, info: TrainingSetup) -> None:
        """Called once before training (also on resume, before the checkpoint is loaded)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Called before the first batch of ``epoch`` (epochs count from 1)."""

    @abc.abstractmethod
    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        """Loss (and optionally logits and logs) for one batch; per-sample state changes here."""

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        """Called after the last batch of ``epoch``; returns scalars to log."""
        return {}

    def new_backbone(self, *, pretrained: bool = True) -> nn.Module:
        """Another network of the run's backbone kind (``model.backbone`` with its options), for
        methods that train several (Co-teaching's peer network).

        ``pretrained=True`` loads the run's ``model.pretrained`` weights when it has some; with
        ``False``, or in a run without, the weights are fresh, drawn from torch's global generator
        (seeded by the engine, so the run stays reproducible). Call it in ``__init__`` so that the
        network's parameters are in the method's state dict and parameter groups;
        :func:`noisyfer.models.init_weights` re-initialises a network in place.
        """
        spec = getattr(self.backbone, "spec", None)
        if spec is None:
            raise TypeError(f"{type(self).__name__}.new_backbone: the method's backbone was not made by "
                            "noisyfer.models.create_backbone (it has no .spec to build another from)")
        return spec.create(pretrained=pretrained)

    def predict(self, images: Tensor) -> Tensor:
        """Logits (N, C) for normalised images; what evaluation and inference use."""
        return self(images)

    def param_groups(self, *, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups. A group may set its own ``lr``, ``weight_decay`` and
        ``optimizer`` (``"sgd"``, ``"adam"``, ``"adamw"``: groups naming another optimizer than the
        run's get one of their own, stepped and scheduled alongside)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr,
                 "weight_decay": weight_decay}]

    def epoch_record(self) -> dict[str, Tensor]:
        """Per-sample arrays (first dimension ``num_train``) saved after each epoch as
        ``samples/epoch_NNN.npz`` in the run, for the analyses. Conventional keys, so that analyses
        find them whatever the method: ``labels`` (current training labels of a relabeling method),
        ``clean_score`` (higher = more likely correctly labelled: attention weight, certainty,
        1 - uncertainty), ``label_dist`` (N, C learned or constructed label distributions),
        ``lambda`` (per-sample uncertainty factors)."""
        return {}
