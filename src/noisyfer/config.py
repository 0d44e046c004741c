"""Run configuration: typed sections, YAML files and ``key=value`` overrides.

A run is configured by one nested mapping (saved as ``config.yaml`` in the run directory)::

    seed: 0
    device: auto            # auto | cpu | cuda | cuda:N
    out: runs
    method: {name: ce, ...options of the method}
    data:   {name: synthetic, root: null, image_size: 64, ...options of the dataset}
    noise:  {kind: symmetric, rate: 0.3, seed: 0, ...}
    model:  {backbone: resnet18, pretrained: null, options: {}}
    train:  {epochs: 40, batch_size: 64, lr: 0.001, optimizer: adam, schedule: exponential, ...}
    augment: {hflip: 0.5, crop_padding: 0.0625, erasing: 0.5, ...}

``method=scn`` is shorthand for ``method.name=scn`` (same for ``data``). Options of the chosen method
and dataset live in their sections and are checked against the dataclass they registered with.
Every key is validated: an unknown key, a value of the wrong type or out of range raises
:class:`~noisyfer.errors.UserError` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import UserError


@dataclass
class DataConfig:
    """Which dataset, where, and at what size (its own options are added by its registration)."""

    name: str = "synthetic"
    root: str | None = None
    image_size: int | None = None
    cache_dir: str | None = None
    on_bad: str = "error"
    #: Cross-validation (see :mod:`noisyfer.data.folds`): train on all folds but ``fold``, score ``fold``.
    folds: int = 0
    fold: int | None = None
    fold_seed: int = 0


@dataclass
class NoiseConfig:
    """Label noise injected into the training labels (see :mod:`noisyfer.noise`)."""

    kind: str = "none"
    rate: float = 0.0
    seed: int = 0
    exact: bool = False
    file: str | None = None
    pairs: dict | None = None
    probs: str | None = None


@dataclass
class ModelConfig:
    backbone: str = "resnet18"
    pretrained: str | None = None
    options: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "exponential"
    gamma: float = 0.9
    milestones: list = field(default_factory=list)
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


@dataclass
class AugmentConfig:
    """Batch augmentation on tensors (see :mod:`noisyfer.engine.augment`)."""

    hflip: float = 0.5
    crop_padding: float = 0.0625
    rotation: float = 0.0
    erasing: float = 0.5
    erasing_scale: list = field(default_factory=lambda: [0.02, 0.25])
    noise: float = 0.0
    noise_std: float = 0.05
    strong_ops: int = 2
    strong_magnitude: float = 10.0
    mean: list = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list = field(default_factory=lambda: [0.229, 0.224, 0.225])


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "noise": NoiseConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "augment": AugmentConfig,
}
TOP_LEVEL: dict[str, Any] = {"seed": 0, "device": "auto", "out": "runs", "name": None, "resume": None}
TOP_TYPES: dict[str, Any] = {"seed": int, "device": str, "out": str, "name": str | None, "resume": str | None}
#: Sections whose extra keys belong to a registered component (validated against its options).
COMPONENT_SECTIONS = {"method": "name", "data": "name"}

CHOICES = {
    "train.optimizer": ("adam", "adamw", "sgd"),
    "train.schedule": ("constant", "exponential", "multistep", "cosine"),
    "train.sampler": ("random", "balanced"),
    "train.amp": ("auto", "on", "off"),
    "data.on_bad": ("error", "skip"),
}


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             list: "a list", dict: "a mapping"}
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return " or ".join(_type_name(a) for a in args) + (" or null" if type(None) in typing.get_args(tp) else "")
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (parsed YAML) to type ``tp`` or raise a UserError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except UserError:
                continue
        raise UserError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin in (list, tuple):
        tp = origin
    if origin is dict:
        tp = dict
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif tp in (list, tuple):
        if isinstance(value, (list, tuple)):
            return list(value) if tp is list else tuple(value)
    elif tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif tp is Any:
        return value
    raise UserError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def build_options(cls: type | None, values: Mapping[str, Any], *, section: str) -> Any:
    """Instantiate options dataclass ``cls`` from ``values``, each key validated and coerced."""
    values = dict(values)
    if cls is None:
        if values:
            raise UserError(f"{section}: takes no options, got {', '.join(sorted(values))}")
        return None
    known = _fields(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            extra = f" (did you mean '{section}.{hint[0]}'?)" if hint else ""
            raise UserError(f"unknown key '{section}.{key}'{extra}; known: {', '.join(sorted(known))}")
        kwargs[key] = coerce(value, known[key], f"{section}.{key}")
    try:
        return cls(**kwargs)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"{section}: {exc}") from None


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.lr=0.01"`` -> ``("train.lr", 0.01)`` (the value parsed as YAML)."""
    if "=" not in item:
        raise UserError(f"expected key=value, got '{item}'")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"empty key in '{item}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(tree: dict, key: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for key ``"a.b"``; ``method=x`` means ``method.name=x``."""
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in COMPONENT_SECTIONS and not isinstance(value, Mapping):
        parts = [parts[0], COMPONENT_SECTIONS[parts[0]]]
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"'{key}': '{part}' is a value, not a section")
        node = child
    if isinstance(value, Mapping) and isinstance(node.get(parts[-1]), dict):
        for sub_key, sub_value in value.items():
            set_dotted(node, f"{parts[-1]}.{sub_key}", sub_value)
    else:
        node[parts[-1]] = value


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(tree, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return tree


def merge_tree(base: dict, update: Mapping) -> dict:
    """Merge ``update`` into ``base`` with the same rules as ``key=value`` overrides."""
    for key, value in update.items():
        set_dotted(base, key, value)
    return base


@dataclass
class RunConfig:
    """A fully resolved and validated run configuration."""

    method: str
    method_options: Any
    data: DataConfig
    data_options: Any
    noise: NoiseConfig
    model: ModelConfig
    train: TrainConfig
    augment: AugmentConfig
    seed: int = 0
    device: str = "auto"
    out: str = "runs"
    name: str | None = None
    resume: str | None = None

    def to_dict(self) -> dict:
        """The nested mapping that reproduces this configuration (saved as ``config.yaml``)."""
        tree: dict[str, Any] = {k: getattr(self, k) for k in TOP_LEVEL}
        tree["method"] = {"name": self.method, **_asdict(self.method_options)}
        tree["data"] = {**dataclasses.asdict(self.data), **_asdict(self.data_options)}
        if not self.data.folds:  # runs without folds keep the configuration files they always had
            for key in ("folds", "fold", "fold_seed"):
                tree["data"].pop(key)
        for section in ("noise", "model", "train", "augment"):
            tree[section] = dataclasses.asdict(getattr(self, section))
        return tree

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _asdict(options: Any) -> dict:
    return dataclasses.asdict(options) if options is not None else {}


def _check_ranges(cfg: RunConfig) -> None:
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in allowed:
            raise UserError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
    checks = [
        ("noise.rate", 0.0 <= cfg.noise.rate < 1.0, "a rate in [0, 1)"),
        ("train.epochs", cfg.train.epochs >= 1, "at least 1"),
        ("train.batch_size", cfg.train.batch_size >= 2, "at least 2 (batch norm needs 2 samples)"),
        ("train.lr", cfg.train.lr > 0, "a positive number"),
        ("train.weight_decay", cfg.train.weight_decay >= 0, "a non-negative number"),
        ("train.gamma", cfg.train.gamma > 0, "a positive number"),
        ("train.warmup_epochs", cfg.train.warmup_epochs >= 0, "a non-negative number"),
        ("train.keep_checkpoints", cfg.train.keep_checkpoints >= 0, "0 (keep all) or more"),
        ("train.eval_batch_size", cfg.train.eval_batch_size >= 1, "at least 1"),
        ("augment.hflip", 0.0 <= cfg.augment.hflip <= 1.0, "a probability in [0, 1]"),
        ("augment.erasing", 0.0 <= cfg.augment.erasing <= 1.0, "a probability in [0, 1]"),
        ("augment.noise", 0.0 <= cfg.augment.noise <= 1.0, "a probability in [0, 1]"),
        ("augment.crop_padding", 0.0 <= cfg.augment.crop_padding < 0.5, "a fraction of the side in [0, 0.5)"),
        ("augment.mean", len(cfg.augment.mean) == 3, "three numbers (RGB)"),
        ("augment.std", len(cfg.augment.std) == 3 and all(s > 0 for s in cfg.augment.std), "three positive numbers"),
        ("augment.erasing_scale", len(cfg.augment.erasing_scale) == 2
         and 0 < cfg.augment.erasing_scale[0] <= cfg.augment.erasing_scale[1] < 1, "[min, max] area fractions in (0, 1)"),
    ]
    if cfg.data.image_size is not None:
        checks.append(("data.image_size", 16 <= cfg.data.image_size <= 512, "an integer in 16..512"))
    if any(not isinstance(m, int) or m < 0 for m in cfg.train.milestones):
        raise UserError(f"train.milestones: expected a list of epoch numbers, got {cfg.train.milestones!r}")
    for key, ok, expected in checks:
        if not ok:
            section, name = key.split(".")
            raise UserError(f"{key}: expected {expected}, got {getattr(getattr(cfg, section), name)!r}")
    from .data.folds import check_fold_settings

    check_fold_settings(cfg.data.folds, cfg.data.fold)
    if cfg.device != "auto" and not (cfg.device == "cpu" or cfg.device.startswith("cuda") or cfg.device == "mps"):
        raise UserError(f"device: expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")


def resolve_config(tree: Mapping[str, Any]) -> RunConfig:
    """Validate a nested mapping (YAML file + overrides) into a :class:`RunConfig`.

    Components are looked up in the registries, so their modules must be imported first
    (``import noisyfer`` does it).
    """
    from .registry import DATASETS, METHODS

    tree = dict(tree)
    for key in tree:
        if key not in TOP_LEVEL and key not in SECTIONS and key not in COMPONENT_SECTIONS:
            known = sorted([*TOP_LEVEL, *SECTIONS, "method"])
            hint = difflib.get_close_matches(key, known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise UserError(f"unknown key '{key}'{extra}; known: {', '.join(known)}")
    top = {k: coerce(tree.get(k, default), TOP_TYPES[k], k) for k, default in TOP_LEVEL.items()}

    method_tree = dict(tree.get("method") or {})
    method_name = coerce(method_tree.pop("name", "ce"), str, "method")
    method_entry = METHODS.get(method_name)
    method_options = build_options(method_entry.options, method_tree, section="method")

    sections: dict[str, Any] = {}
    data_options = None
    for section, cls in SECTIONS.items():
        values = tree.get(section) or {}
        if not isinstance(values, Mapping):
            raise UserError(f"{section}: expected a section (mapping), got {values!r}")
        values = dict(values)
        if section == "data":
            own = {k: values.pop(k) for k in list(values) if k in _fields(cls)}
            sections[section] = build_options(cls, own, section=section)
            entry = DATASETS.get(sections[section].name)
            data_options = build_options(entry.options, values, section="data")
        else:
            sections[section] = build_options(cls, values, section=section)
    cfg = RunConfig(method=method_name, method_options=method_options, data_options=data_options,
                    **sections, **top)
    _check_ranges(cfg)
    return cfg


def config_from_args(config_file: str | None, overrides: list[str]) -> RunConfig:
    """Resolve ``noisyfer train [CONFIG.yaml] key=value ...`` into a :class:`RunConfig`."""
    tree: dict = {}
    if config_file:
        merge_tree(tree, load_yaml(config_file))
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(tree, key, value)
    return resolve_config(tree)
