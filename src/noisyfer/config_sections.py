"""The typed sections of a run configuration (``data``, ``noise``, ``model``, ``train``, ``augment``).

Each field is a key of its section; :mod:`noisyfer.config` builds them from YAML and overrides, checks
types, choices and ranges, and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AugmentConfig", "DataConfig", "ModelConfig", "NoiseConfig", "TrainConfig"]


@dataclass
class DataConfig:
    """Which dataset, where, and at what size (its own options are added by its registration).

    Attributes
    ----------
    name
        A registered dataset (noisyfer list): synthetic, rafdb, folder, csv, ...
    root
        The dataset's folder (readers of real data).
    image_size
        Side in pixels the images are resized to (default: the dataset's own).
    cache_dir
        Where decoded images are cached (default $NOISYFER_CACHE or ~/.cache/noisyfer).
    on_bad
        error (stop at the first bad item, naming file and line) or skip (leave it out and record it).
    min_side
        Images smaller than this many pixels on a side are bad items.
    test_fraction
        For a dataset without a test split: the share of each class held out as the test split
        (default 0.2 there; an error for a dataset that has a test split).
    split_seed
        Seed of that held-out split (independent of the training seed, so every run tests on the same images).
    """

    name: str = "synthetic"
    root: str | None = None
    image_size: int | None = None
    cache_dir: str | None = None
    on_bad: str = "error"
    min_side: int = 16
    test_fraction: float | None = None
    split_seed: int = 0
    #: Cross-validation (see :mod:`noisyfer.data.folds`): train on all folds but ``fold``, score ``fold``.
    folds: int = 0
    fold: int | None = None
    fold_seed: int = 0


@dataclass
class NoiseConfig:
    """Label noise injected into the training labels (see :mod:`noisyfer.noise`).

    Attributes
    ----------
    kind
        none, symmetric, uniform, asymmetric, instance or crowd.
    rate
        Share of training labels changed, in [0, 1).
    seed
        Seed of the noise draw (independent of the training seed).
    exact
        Exact per-class counts instead of independent draws.
    file
        A label file to train on instead (noisyfer's CSV, or RAF-DB's 'train_00001.jpg 5' lines).
    pairs
        Asymmetric noise: {class: class it is flipped to} (names or indices; default: the usual confusions).
    probs
        Instance noise: .npy (N, C) class probabilities to draw the flips from.
    """

    kind: str = "none"
    rate: float = 0.0
    seed: int = 0
    exact: bool = False
    file: str | None = None
    pairs: dict | None = None
    probs: str | None = None


@dataclass
class ModelConfig:
    """The network.

    Attributes
    ----------
    backbone
        A registered backbone (noisyfer list): resnet18, resnet50, resnet_small, resnet_tiny, ...
    pretrained
        A checkpoint file to start from (a noisyfer run's best_model.pt or a torchvision-named state dict).
    options
        The backbone's own options as a mapping (noisyfer list BACKBONE), e.g. {stem: dmue}.
    """

    backbone: str = "resnet18"
    pretrained: str | None = None
    options: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    """The optimisation and the loop.

    Attributes
    ----------
    epochs
        Training epochs (a test evaluation and a checkpoint after each).
    batch_size
        Training batch size.
    lr
        Learning rate (methods may give some parameters a multiple of it).
    optimizer
        adam, adamw or sgd.
    weight_decay
        L2 penalty (decoupled for adamw).
    momentum, nesterov
        SGD's momentum and Nesterov switch.
    schedule
        constant, exponential (lr x gamma each epoch), multistep (x gamma at milestones) or cosine.
    gamma
        Decay factor of the exponential and multistep schedules.
    milestones
        Epochs at which multistep multiplies the lr by gamma.
    warmup_epochs
        Linear warm-up from 0 over this many epochs (fractions allowed).
    min_lr
        Floor of the cosine schedule.
    sampler
        random, or balanced (each class drawn equally often).
    drop_last
        Drop the last incomplete batch of an epoch.
    amp
        auto (bf16/fp16 on CUDA, off on CPU), on or off.
    grad_clip
        Clip the gradient norm to this value (null: no clipping).
    deterministic
        Deterministic kernels (same numbers on the same machine).
    keep_checkpoints
        Newest epoch checkpoints kept (0 keeps all).
    eval_batch_size
        Batch size of the test evaluation.
    log_every
        Steps between TensorBoard's per-step points (mean loss and lr of those steps) and loss checks
        for NaN; on CUDA the loop waits for the device only then.
    channels_last
        Keep the convolution weights (and so the activations) in NHWC, the layout tensor cores prefer.
    compile
        Compile the backbone's forward with ``torch.compile`` in place (checkpoint keys unchanged).
    fused_optimizer
        Adam and AdamW update all parameters in one fused kernel (torch's ``fused=True``) instead of a
        loop of small operations per parameter: on the CPU, Adam's step over ResNet-18 took 16 ms
        instead of 138 ms. Same update up to float rounding; false gives the per-parameter loop of
        earlier versions. SGD keeps torch's default.
    sync_bn
        In a distributed run (``torchrun``, ``--nproc``), the backbone's batch-norm layers normalise
        with the statistics of the whole global batch instead of each process's share (then the
        update is the single-process one; costs two all-reduces per layer and pass). No effect in
        one process.
    """

    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "exponential"
    gamma: float = 0.9
    milestones: list[int] = field(default_factory=list)
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    sampler: str = "random"
    drop_last: bool = True
    amp: str = "auto"
    grad_clip: float | None = None
    deterministic: bool = True
    keep_checkpoints: int = 2
    eval_batch_size: int = 256
    log_every: int = 20
    channels_last: bool = False
    compile: bool = False
    fused_optimizer: bool = True
    sync_bn: bool = False


@dataclass
class AugmentConfig:
    """Batch augmentation on tensors (see :mod:`noisyfer.engine.augment`).

    Attributes
    ----------
    hflip
        Probability of a horizontal flip.
    crop_padding
        Random crop after padding by this fraction of the side.
    rotation
        Maximum rotation in degrees (0: none).
    erasing
        Probability of random erasing.
    erasing_scale
        [min, max] area fraction of an erased rectangle.
    noise, noise_std
        Probability and standard deviation of additive Gaussian noise.
    strong_ops, strong_magnitude
        RandAugment of the strong views (methods that use them): operations per image, magnitude out of 30.
    strong_invert
        Colour inversion among the RandAugment operations (NCCTFER's paper lists it); false draws from
        Cubuk et al.'s 14 operations only (the strong views before issue 14, image for image).
    mean, std
        Per-channel (RGB) normalisation.
    """

    hflip: float = 0.5
    crop_padding: float = 0.0625
    rotation: float = 0.0
    erasing: float = 0.5
    erasing_scale: list[float] = field(default_factory=lambda: [0.02, 0.25])
    noise: float = 0.0
    noise_std: float = 0.05
    strong_ops: int = 2
    strong_magnitude: float = 10.0
    strong_invert: bool = True
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
