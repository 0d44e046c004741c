"""What a run records so that it is never continued or evaluated on something else without a word.

* The **configuration identity**: the resolved configuration without the keys that may change between
  a run and its resumption (:data:`RESUME_FREE_KEYS`), and its SHA-256. Every checkpoint stores both;
  resuming refuses a ``config.yaml`` whose identity differs and names the keys that changed.
* **Paths** (:data:`PATH_KEYS`) are stored absolute in ``config.yaml``, with the path as given in a
  comment, so ``eval`` and ``resume`` work from any working directory.
* The **data fingerprint** (``RUN_DIR/data.json``): per split the number of samples, the image shape,
  the SHA-256 of the labels and a CRC-32 of all image bytes (about a second per GB). Resuming refuses
  changed data; ``noisyfer eval`` refuses it unless told to go on (``--allow-data-change``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zlib
from typing import Any, Mapping

import numpy as np

from ..config import GIVEN_MARKER, RunConfig, yaml_key_lines
from ..errors import DataError, UserError

__all__ = ["PATH_KEYS", "RESUME_FREE_KEYS", "absolute_paths", "given_paths", "check_config_identity", "check_data_fingerprint", "config_hash", "config_identity",
           "data_fingerprint", "fingerprint_changes"]

#: Keys that may differ between a run and its resumption: ``train.epochs`` and ``device`` (resume
#: overrides) and the places of files (a dataset moved to another disk; the fingerprint checks it is the same).
RESUME_FREE_KEYS = ("train.epochs", "device", "resume", "out", "name", "data.root", "data.cache_dir", "noise.file",
                    "noise.probs", "model.pretrained")


#: Keys that hold paths of files or folders (stored absolute in a run's ``config.yaml``).
PATH_KEYS = ("data.root", "data.cache_dir", "noise.file", "noise.probs", "model.pretrained")


def given_paths(text: str) -> dict[str, str]:
    """``{dotted key: path as given}`` from the comments :meth:`RunConfig.to_yaml` wrote in ``text``."""
    return {dotted: line.rsplit(GIVEN_MARKER, 1)[1] for line, dotted in yaml_key_lines(text)
            if dotted is not None and GIVEN_MARKER in line}


def absolute_paths(cfg: RunConfig) -> tuple[RunConfig, dict[str, str]]:
    """``cfg`` with the relative paths of :data:`PATH_KEYS` made absolute (``~`` expanded), and
    ``{dotted key: path as given}`` of those that changed; so a run's ``config.yaml`` works from any
    working directory (``eval``, ``resume``) and still shows what was typed."""
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data), noise=dataclasses.replace(cfg.noise),
                              model=dataclasses.replace(cfg.model))
    given = {}
    for dotted in PATH_KEYS:
        section, name = dotted.split(".")
        holder = getattr(cfg, section)
        value = getattr(holder, name)
        if not value:
            continue
        absolute = os.path.abspath(os.path.expanduser(value))
        if absolute != value:
            setattr(holder, name, absolute)
            given[dotted] = value
    return cfg, given


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted != "model.options" and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def config_identity(cfg: RunConfig) -> dict[str, Any]:
    """``{dotted key: value}`` of ``cfg`` without :data:`RESUME_FREE_KEYS` (JSON-ready)."""
    flat = _flatten(cfg.to_dict())
    return json.loads(json.dumps({k: v for k, v in flat.items() if k not in RESUME_FREE_KEYS}, default=str))


def config_hash(identity: Mapping[str, Any]) -> str:
    """SHA-256 of a configuration identity (canonical JSON)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def check_config_identity(state: Mapping[str, Any], cfg: RunConfig, *, where: object) -> None:
    """Raise a :class:`UserError` when checkpoint ``state`` was trained with another configuration.

    Checkpoints written before configuration hashes existed carry none and are not checked.
    """
    recorded = state.get("config")
    if not isinstance(recorded, dict) or "config_hash" not in state:
        return
    current = config_identity(cfg)
    if config_hash(current) == state["config_hash"]:
        return
    changed = [f"{k}: {recorded.get(k, '(absent)')!r} -> {current.get(k, '(absent)')!r}"
               for k in sorted(set(recorded) | set(current)) if recorded.get(k) != current.get(k)]
    shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
    raise UserError(f"{where}: the configuration differs from the one the checkpoint was trained with "
                    f"({shown or 'hash mismatch'}); a resumed run keeps its configuration (only train.epochs, "
                    "device and file locations may change): restore config.yaml or start a new run")


def _split_fingerprint(data) -> dict[str, Any]:
    images = np.asarray(data.images)
    crc = 0
    step = 1024
    for start in range(0, len(images), step):
        crc = zlib.crc32(np.ascontiguousarray(images[start:start + step]).data, crc)
    labels = np.ascontiguousarray(np.asarray(data.labels, dtype=np.int64))
    return {"num_samples": int(len(data)), "image_shape": [int(v) for v in images.shape[1:]],
            "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(), "images_crc32": f"{crc:08x}",
            "class_names": list(data.class_names)}


def data_fingerprint(splits: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint of each split (``train`` and ``test``) as stored in ``RUN_DIR/data.json``."""
    return {"format": "noisyfer-data-fingerprint", "version": 1,
            "splits": {name: _split_fingerprint(data) for name, data in splits.items()}}


def fingerprint_changes(recorded: Mapping[str, Any], current: Mapping[str, Any], splits=None) -> list[str]:
    """What differs between two fingerprints, per split (``splits``: only these), as short phrases."""
    changes = []
    for name, now in current["splits"].items():
        if splits is not None and name not in splits:
            continue
        was = recorded.get("splits", {}).get(name)
        if was is None:
            continue
        if was["num_samples"] != now["num_samples"]:
            changes.append(f"{name}: {was['num_samples']} samples at training, {now['num_samples']} now")
            continue
        what = [label for key, label in (("class_names", "class names"), ("image_shape", "image size"),
                                         ("labels_sha256", "labels"), ("images_crc32", "images"))
                if was.get(key) != now.get(key)]
        if what:
            changes.append(f"{name}: {' and '.join(what)} differ")
    return changes


def check_data_fingerprint(path, current: Mapping[str, Any], *, splits=None) -> list[str]:
    """Compare ``current`` with the fingerprint stored at ``path``; returns the changes (empty when the
    data is the same, or when the run predates fingerprints and has none)."""
    if not path.is_file():
        return []
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON ({exc})", path=path) from None
    return fingerprint_changes(recorded, current, splits)
