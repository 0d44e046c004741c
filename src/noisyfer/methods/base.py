"""The interface every training method implements; the engine's one loop drives it.

A method is an ``nn.Module`` that owns its networks (backbone, heads, branches), its per-sample
state and its losses. The engine owns everything else: data order, batches on the device,
optimizer and schedule, mixed precision, evaluation, logging, checkpoints and resuming.

Per epoch the engine calls ``on_epoch_start``, then for each batch ``training_step`` (and steps the
optimizer on the returned loss), then ``on_epoch_end`` and evaluates ``predict`` on the test set.

A minimal method, cross-entropy plus a pull towards per-sample moving averages of the predictions
(ELR-style targets), is this file, saved as ``src/noisyfer/methods/ema_ce.py`` (this example is run
by the test suite)::

    >>> from dataclasses import dataclass
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from torch import nn
    >>> from noisyfer.methods import Method, StepOutput
    >>> from noisyfer.registry import register_method
    >>> @dataclass
    ... class EMAOptions:
    ...     '''Options of ``ema_ce``: momentum of the targets and weight of their term.'''
    ...     beta: float = 0.7
    ...     weight: float = 1.0
    >>> @register_method("ema_ce", options=EMAOptions)
    ... class EMACrossEntropy(Method):
    ...     '''Cross-entropy plus soft cross-entropy to per-sample moving-average targets.'''
    ...
    ...     def __init__(self, *, options, **common):
    ...         super().__init__(options=options, **common)
    ...         self.fc = nn.Linear(self.backbone.num_features, self.num_classes)
    ...         self.state.register("target", torch.zeros(self.num_train, self.num_classes))
    ...
    ...     def forward(self, images):
    ...         return self.fc(self.backbone(images).features)
    ...
    ...     def training_step(self, batch, *, epoch):
    ...         logits = self(self.augment.train(batch.images))
    ...         old = self.state["target"][batch.indices]
    ...         new = self.options.beta * old + (1 - self.options.beta) * logits.softmax(1).detach()
    ...         self.state.update("target", batch.indices, new)
    ...         soft_ce = -(new * logits.log_softmax(1)).sum(1).mean()
    ...         loss = F.cross_entropy(logits, batch.labels) + self.options.weight * soft_ce
    ...         return StepOutput(loss=loss, logits=logits, logs={"soft_ce": soft_ce.detach()})

The engine builds it from a configuration (``noisyfer train ... method=ema_ce method.beta=0.5``)
as :func:`noisyfer.create_method` does here, and calls ``training_step`` on each batch::

    >>> from noisyfer import create_backbone, create_method
    >>> from noisyfer.config import AugmentConfig
    >>> from noisyfer.engine.augment import Augmenter
    >>> from noisyfer.methods import Batch
    >>> method = create_method("ema_ce", backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=100,
    ...                        options=EMAOptions(beta=0.5), image_size=32,
    ...                        augment=Augmenter(AugmentConfig(), image_size=32))
    >>> batch = Batch(images=torch.zeros(4, 3, 32, 32, dtype=torch.uint8), labels=torch.tensor([0, 1, 2, 3]),
    ...               indices=torch.tensor([5, 6, 7, 8]))
    >>> out = method.training_step(batch, epoch=1)
    >>> out.loss.shape, out.logits.shape
    (torch.Size([]), torch.Size([4, 7]))
    >>> method.state["target"][5:9].sum(1)   # (1 - beta) of a probability vector, from 0
    tensor([0.5000, 0.5000, 0.5000, 0.5000])

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


@dataclass(frozen=True)
class OptimizerSpec:
    """A separate optimizer for some of a method's parameters (:attr:`ParamGroup.optimizer`).

    The engine builds one optimizer per distinct spec, next to the run's ``train.optimizer``; all of
    them step on every batch and follow the run's learning-rate schedule.

    Attributes
    ----------
    name
        ``"sgd"``, ``"adam"`` or ``"adamw"``.
    settings
        Constructor arguments that replace the run's (``train.momentum``, ``train.nesterov``) or
        torch's defaults, e.g. ``{"momentum": 0.0, "nesterov": False}`` or ``{"betas": (0.5, 0.999)}``.
    """

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ParamGroup:
    """One optimizer parameter group of a method (what :meth:`Method.param_groups` returns).

    Attributes
    ----------
    params
        The group's parameters (those with ``requires_grad=False`` are left out by the engine).
    lr_scale
        Learning rate as a multiple of the run's ``train.lr`` (e.g. 10 for a head trained 10x faster).
    lr
        An absolute base learning rate instead, whatever ``train.lr`` is (e.g. LDL-VA's lambda step).
        Either way the run's schedule (warm-up, decay) scales it.
    weight_decay
        The group's weight decay; ``None`` is the run's ``train.weight_decay``.
    optimizer
        ``None``: the run's ``train.optimizer``; an :class:`OptimizerSpec`: an optimizer of its own
        (a second optimizer).

    Examples
    --------
    >>> centers = nn.Parameter(torch.zeros(7, 16))
    >>> ParamGroup([centers], lr_scale=10.0, weight_decay=0.0).lr_scale
    10.0
    >>> ParamGroup([centers], lr=10.0, optimizer=OptimizerSpec("sgd", {"momentum": 0.0})).optimizer.name
    'sgd'
    """

    params: list
    lr_scale: float = 1.0
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: OptimizerSpec | None = None

    def __post_init__(self) -> None:
        self.params = list(self.params)
        if self.lr is not None and self.lr_scale != 1.0:
            raise ValueError("ParamGroup: give lr (absolute) or lr_scale (multiple of train.lr), not both")
        if self.lr_scale < 0 or (self.lr is not None and self.lr < 0) or (self.weight_decay or 0.0) < 0:
            raise ValueError(f"ParamGroup: lr, lr_scale and weight_decay must be >= 0, got lr={self.lr}, "
                             f"lr_scale={self.lr_scale}, weight_decay={self.weight_decay}")


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
    #: What the method's own per-sample signal of a wrong label is (recorded as ``clean_score`` by
    #: :meth:`epoch_record`, higher = more likely correctly labelled), from its paper; ``None`` for a
    #: method whose paper defines none (``noisyfer suspects --score method`` then says so).
    signal: str | None = None

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
        #: Settings the method decided at run time (e.g. SMEC's estimated noise level), recorded in
        #: the run's ``summary.json`` under ``method_resolved``.
        self.resolved: dict[str, Any] = {}

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

    def param_groups(self) -> list[ParamGroup]:
        """The optimizer's parameter groups (:class:`ParamGroup`): by default every trainable
        parameter at the run's ``train.lr`` and ``train.weight_decay``. Override for per-part learning
        rates (``lr_scale``), no weight decay on some parameters, or a second optimizer
        (``optimizer=OptimizerSpec(...)``)."""
        return [ParamGroup([p for p in self.parameters() if p.requires_grad])]

    def epoch_record(self) -> dict[str, Tensor]:
        """Per-sample arrays (first dimension ``num_train``) saved after each epoch as
        ``samples/epoch_NNN.npz`` in the run, for the analyses. Conventional keys, so that analyses
        find them whatever the method: ``labels`` (current training labels of a relabeling method),
        ``clean_score`` (higher = more likely correctly labelled: attention weight, certainty,
        1 - uncertainty), ``label_dist`` (N, C learned or constructed label distributions),
        ``lambda`` (per-sample uncertainty factors)."""
        return {}
