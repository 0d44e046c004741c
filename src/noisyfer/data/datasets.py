"""Registered datasets and ``create_dataset``, the one entry point the engine uses.

A dataset factory takes the run's ``data`` section (:class:`~noisyfer.config.DataConfig`) and its own
options dataclass and returns splits in noisyfer's format, at least ``train`` and ``test``::

    @register_dataset("mydata", options=MyOptions)
    def mydata(*, config: DataConfig, options: MyOptions) -> dict[str, FERData]:
        ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..errors import DataError, UserError
from ..registry import DATASETS, register_dataset
from .format import FERData, load_dataset, read_meta

REQUIRED_SPLITS = ("train", "test")


def default_cache_dir() -> Path:
    """``$NOISYFER_CACHE``, else ``~/.cache/noisyfer``."""
    return Path(os.environ.get("NOISYFER_CACHE") or Path.home() / ".cache" / "noisyfer")


def cache_dir_of(config: DataConfig) -> Path:
    return Path(config.cache_dir) if config.cache_dir else default_cache_dir()


def resize_images(images: np.ndarray, size: int, *, chunk: int = 2048) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) images to ``size`` x ``size`` (antialiased bilinear), in chunks."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((images.shape[0], size, size, 3), dtype=np.uint8)
    for start in range(0, images.shape[0], chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + chunk] = y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def _at_size(splits: dict[str, FERData], size: int | None) -> dict[str, FERData]:
    if size is None:
        return splits
    return {
        name: FERData(images=resize_images(s.images, size), labels=s.labels, class_names=s.class_names,
                      columns=s.columns)
        for name, s in splits.items()
    }


#: Share of the training images held out as the test split of a dataset without one (data.test_fraction unset).
DEFAULT_TEST_FRACTION = 0.2


def hold_out_test(train: FERData, *, fraction: float, seed: int) -> tuple[FERData, FERData]:
    """``(train, test)``: ``fraction`` of each class's samples (rounded, at least 1 when a class has 2 or
    more, never all of them) drawn with ``seed`` as the test split; both keep the original order."""
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(train), dtype=bool)
    for c in range(train.num_classes):
        members = np.flatnonzero(train.labels == c)
        if len(members) < 2:
            continue
        k = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        test_mask[rng.permutation(members)[:k]] = True
    return train.subset(np.flatnonzero(~test_mask)), train.subset(np.flatnonzero(test_mask))


def create_dataset(config: DataConfig, options: object = None) -> dict[str, FERData]:
    """Build the splits of the dataset named ``config.name``; checks that train and test exist.

    A dataset without a test split gets one held out of its training split (:func:`hold_out_test`,
    ``data.test_fraction`` or :data:`DEFAULT_TEST_FRACTION`, seeded by ``data.split_seed``), recorded in
    the splits' ``info["test_split"]``.
    """
    from .readers.report import ReadSplits

    entry = DATASETS.get(config.name)
    splits = entry.obj(config=config, options=options)
    if not isinstance(splits, ReadSplits):
        splits = ReadSplits(splits, report=None)
    if "test" in splits and config.test_fraction is not None:
        raise UserError(f"data.test_fraction: dataset '{config.name}' has its own test split "
                        f"({len(splits['test'])} images); leave data.test_fraction unset")
    if "test" not in splits and "train" in splits:
        fraction = DEFAULT_TEST_FRACTION if config.test_fraction is None else config.test_fraction
        splits["train"], splits["test"] = hold_out_test(splits["train"], fraction=fraction, seed=config.split_seed)
        splits.info["test_split"] = {"held_out_fraction": fraction, "split_seed": config.split_seed,
                                     "train": len(splits["train"]), "test": len(splits["test"])}
    for split in REQUIRED_SPLITS:
        if split not in splits:
            raise DataError(f"dataset '{config.name}' has no '{split}' split (has: {', '.join(splits)})",
                            path=config.root or config.name)
        if len(splits[split]) == 0:
            raise DataError(f"the '{split}' split of dataset '{config.name}' is empty", path=config.root or config.name)
    return splits


@register_dataset("noisyfer")
def noisyfer_directory(*, config: DataConfig, options: None) -> dict[str, FERData]:
    """Any directory in noisyfer's own format (``data.root``), e.g. written by ``noisyfer synth``."""
    if not config.root:
        raise UserError("data.root: the 'noisyfer' dataset needs the path of a dataset directory")
    root = Path(config.root)
    if not root.is_dir():
        raise UserError(f"data.root: directory not found: {root}")
    read_meta(root)
    return _at_size(load_dataset(root, mmap=False), config.image_size)


@dataclass
class SyntheticOptions:
    """Options of the ``synthetic`` dataset (the FER simulator); see ``noisyfer.data.synthetic``.

    Attributes
    ----------
    num_train, num_test
        Split sizes.
    classes
        7 (basic expressions) or 8 (with contempt).
    seed
        Simulator seed (independent of the training seed).
    ambiguity
        Share of faces blending two expressions.
    class_counts
        ``rafdb`` (RAF-DB-like imbalance) or ``balanced``.
    pseudo_va_error
        Error of the ``pseudo_valence`` / ``pseudo_arousal`` columns: ``published`` (default: the
        concordance of the VA estimator LDLVA used, valence CCC 0.82 and arousal 0.75 on AffectNet)
        or ``legacy`` (the level before issue 14, arousal CCC 0.67; its datasets are the old ones,
        same cache entry and fingerprint). Images and labels are the same at both levels.
    """

    num_train: int = 10000
    num_test: int = 2000
    classes: int = 7
    seed: int = 0
    ambiguity: float = 0.3
    class_counts: str = "rafdb"
    pseudo_va_error: str = "published"

    def check(self, data: DataConfig) -> None:
        """Settings checked when the run configuration is resolved (before a run or a sweep starts)."""
        if not data.root:
            synthetic_config(data, self)


#: ``SynthConfig`` fields as keys of the ``synthetic`` dataset (for error messages).
SYNTHETIC_OPTIONS = {"num_train": "data.num_train", "num_test": "data.num_test", "image_size": "data.image_size",
                     "num_classes": "data.classes", "seed": "data.seed", "ambiguity": "data.ambiguity",
                     "class_counts": "data.class_counts", "pseudo_va_noise": "data.pseudo_va_error"}


def synthetic_config(config: DataConfig, options: SyntheticOptions):
    """The simulator's :class:`~noisyfer.data.synthetic.SynthConfig` of these settings, every range checked
    (errors name the ``data.*`` key); generates nothing."""
    from .synthetic import SynthConfig
    from .synthetic.config import LEGACY_PSEUDO_VA_NOISE, PUBLISHED_PSEUDO_VA_NOISE, SynthConfigError

    if options.num_test < 1:
        raise UserError(f"data.num_test: expected at least 1 (runs are evaluated on the test split), "
                        f"got {options.num_test}")
    levels = {"published": PUBLISHED_PSEUDO_VA_NOISE, "legacy": LEGACY_PSEUDO_VA_NOISE}
    if options.pseudo_va_error not in levels:
        raise UserError(f"data.pseudo_va_error: expected one of {', '.join(levels)}, got {options.pseudo_va_error!r}")
    try:
        return SynthConfig(num_train=options.num_train, num_test=options.num_test,
                           image_size=config.image_size or 64, num_classes=options.classes, seed=options.seed,
                           ambiguity=options.ambiguity, class_counts=options.class_counts,
                           pseudo_va_noise=levels[options.pseudo_va_error])
    except SynthConfigError as exc:
        raise exc.renamed(SYNTHETIC_OPTIONS) from None


@register_dataset("synthetic", options=SyntheticOptions)
def synthetic(*, config: DataConfig, options: SyntheticOptions) -> dict[str, FERData]:
    """FER simulator with ground truth; generated once per setting and cached (``data.cache_dir``).

    With ``data.root`` set, reads a directory written by ``noisyfer synth --out`` instead.
    """
    if config.root:
        return noisyfer_directory(config=config, options=None)
    from .synthetic import load_or_generate

    synth = synthetic_config(config, options)
    splits, _ = load_or_generate(synth, cache_dir=cache_dir_of(config) / "synthetic")
    return splits
