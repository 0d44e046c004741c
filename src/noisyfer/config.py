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
import os
import difflib
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .config_input import (  # noqa: F401 - part of this module's interface
    COMPONENT_SECTIONS,
    check_override_conflicts,
    leaf_keys,
    load_yaml,
    merge_tree,
    parse_override,
    safe_load,
    set_dotted,
)
from .config_sections import AugmentConfig, DataConfig, ModelConfig, NoiseConfig, TrainConfig  # noqa: F401
from .errors import UserError


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "noise": NoiseConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "augment": AugmentConfig,
}
TOP_LEVEL: dict[str, Any] = {"seed": 0, "device": "auto", "out": "runs", "name": None, "resume": None}
TOP_TYPES: dict[str, Any] = {"seed": int, "device": str, "out": str, "name": str | None, "resume": str | None}

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
    """Convert ``value`` (parsed YAML) to type ``tp`` or raise a UserError naming ``key``.

    Floats must be finite.
    """
    original = tp
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
            if not math.isfinite(value):
                raise UserError(f"{key}: expected a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif tp in (list, tuple):
        if isinstance(value, (list, tuple)):
            items = typing.get_args(original)
            if items and items[0] is not Any and items[-1] is not Ellipsis:
                value = [coerce(v, items[0], f"{key}[{i}]") for i, v in enumerate(value)]
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

    def to_yaml(self, *, given: Mapping[str, str] | None = None) -> str:
        """``config.yaml``; ``given`` (dotted key -> path as the user wrote it) adds a comment to the
        line of each such key (see :func:`noisyfer.engine.provenance.absolute_paths`)."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, width=1 << 20)
        if not given:
            return text
        lines = []
        for line, dotted in yaml_key_lines(text):
            if dotted in given and ": " in line:
                line += f"{GIVEN_MARKER}{given[dotted]}"
            lines.append(line)
        return "\n".join(lines) + "\n"


#: The comment :meth:`RunConfig.to_yaml` adds to a path's line (read back by ``provenance.given_paths``).
GIVEN_MARKER = "  # as given: "


def yaml_key_lines(text: str):
    """``(line, dotted key)`` for each line of a ``config.yaml`` text: ``seed``, ``data.root``, ...
    for top-level and section-level keys, ``None`` for deeper lines."""
    section = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        key = stripped.split(":", 1)[0]
        if indent == 0:
            section = key
        yield line, key if indent == 0 else f"{section}.{key}" if indent == 2 else None


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
        ("train.momentum", 0.0 <= cfg.train.momentum < 1.0, "a number in [0, 1)"),
        ("train.nesterov", not (cfg.train.nesterov and cfg.train.optimizer == "sgd" and cfg.train.momentum <= 0),
         "false when train.momentum is 0 (Nesterov needs momentum)"),
        ("train.min_lr", 0.0 <= cfg.train.min_lr <= cfg.train.lr, "a number in [0, train.lr]"),
        ("train.grad_clip", cfg.train.grad_clip is None or cfg.train.grad_clip > 0, "a positive number or null"),
        ("train.log_every", cfg.train.log_every >= 1, "at least 1"),
        ("augment.rotation", 0.0 <= cfg.augment.rotation <= 180.0, "degrees in [0, 180]"),
        ("augment.noise_std", cfg.augment.noise_std >= 0, "a non-negative number"),
        ("augment.strong_ops", cfg.augment.strong_ops >= 0, "0 or more"),
        ("augment.strong_magnitude", 0.0 <= cfg.augment.strong_magnitude <= 30.0, "a number in [0, 30]"),
        ("noise.seed", cfg.noise.seed >= 0, "a non-negative integer"),
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
    if cfg.seed < 0:
        raise UserError(f"seed: expected a non-negative integer, got {cfg.seed}")
    if cfg.data.test_fraction is not None and not 0.0 < cfg.data.test_fraction < 1.0:
        raise UserError(f"data.test_fraction: expected a fraction in (0, 1), got {cfg.data.test_fraction!r}")
    if cfg.data.split_seed < 0:
        raise UserError(f"data.split_seed: expected a non-negative integer, got {cfg.data.split_seed}")
    if cfg.data.min_side < 1:
        raise UserError(f"data.min_side: expected at least 1 (pixels), got {cfg.data.min_side}")
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
    if cfg.noise.kind == "none" and cfg.noise.rate > 0:
        raise UserError(f"noise.rate={cfg.noise.rate:g} changes nothing with noise.kind=none: set noise.kind "
                        "(symmetric, uniform, asymmetric, instance or crowd), or leave noise.rate at 0")
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
    if hasattr(data_options, "check"):  # a dataset's own ranges (e.g. the simulator's image sizes), before any run
        data_options.check(cfg.data)
    return cfg


def shipped_configs() -> dict[str, Path]:
    """``{name: path}`` of the run configs shipped in the package (``noisyfer.configs``, the checkout's
    ``configs/`` folder), e.g. ``ce_sim``."""
    import importlib.resources

    folder = importlib.resources.files("noisyfer.configs")
    return {Path(str(entry)).stem: Path(str(entry)) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".yaml")}


def find_config(name: str) -> Path:
    """The config file ``name``: a path when one exists, else a shipped config by name (``ce_sim`` or
    ``ce_sim.yaml``).

    Raises
    ------
    UserError
        When it is neither, listing the shipped names.
    """
    path = Path(name).expanduser()
    if path.exists() or os.sep in name or "/" in name:
        return path
    shipped = shipped_configs()
    stem = name[:-5] if name.endswith(".yaml") else name
    if stem in shipped:
        return shipped[stem]
    hint = difflib.get_close_matches(stem, shipped, n=1)
    extra = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise UserError(f"config file not found: {name}{extra}; shipped configs (by name): {', '.join(shipped)}")


def config_from_args(config_file: str | None, overrides: list[str]) -> RunConfig:
    """Resolve ``noisyfer train [CONFIG] key=value ...`` into a :class:`RunConfig` (CONFIG: a YAML file or
    the name of a shipped config, :func:`find_config`)."""
    tree: dict = {}
    if config_file:
        merge_tree(tree, load_yaml(find_config(config_file)))
    check_override_conflicts(overrides)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(tree, key, value)
    return resolve_config(tree)
