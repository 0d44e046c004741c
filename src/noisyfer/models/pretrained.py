"""Load the published MS-Celeb-1M ResNet checkpoints with an explicit key mapping and a report.

Three incompatible files circulate (see ``LAYOUTS``); SCN's released script loads one of them with
``strict=False`` into a model whose key names differ, so nothing loads and nothing says so. Here
every key is accounted for: a checkpoint is read, its layout detected from its key names, the names
translated to this package's (torchvision's) names, the classifier heads skipped (they have another
number of classes), and the outcome returned as a :class:`LoadReport`. A file that matches no
layout, fits less than ``min_fraction`` of the backbone, has a tensor of the wrong shape, or was
trained with another stem than the model's is refused *before* the model is touched.

Stem: DMUE's checkpoint was trained with DMUE's stem (no ReLU after ``bn1``, 2x2/2 max-pool), the
other two with torchvision's. The tensors have the same shapes either way, so a mismatch would load
silently and compute the wrong function; :func:`load_pretrained` therefore refuses a DMUE file for
a model without ``stem="dmue"`` and any other file for a model with it, saying which ``stem=`` to
build the model with. (The small nets' 3x3 stem cannot take a published file: its ``conv1`` shape
differs, which the shape check reports.)

Security: files are read with ``torch.load(weights_only=True)``, which cannot run code. Old
``.pth.tar`` files often hold numpy scalars next to the weights (``best_prec1``); the numpy scalar
and dtype constructors are allow-listed because they only rebuild numbers. Any other pickled object
is refused unless the caller passes ``trust_file=True``, which unpickles with
``weights_only=False`` and can execute arbitrary code from the file: use it only for files from a
trusted source.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import UserError
from .resnet import ResNet

try:  # numpy >= 2
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import scalar as _numpy_scalar  # type: ignore[no-redef]

# Rebuilding a numpy scalar needs its constructor, np.dtype and the dtype class; files written with
# numpy 1 name the constructor numpy.core.multiarray.scalar, hence the alias.
_NUMPY_SCALAR_GLOBALS: list[Any] = [
    _numpy_scalar,
    (_numpy_scalar, "numpy.core.multiarray.scalar"),
    np.dtype,
    *sorted({type(np.dtype(code)) for code in "?bhilqBHILQefd"}, key=str),
]
_COUNTER_SUFFIX = "num_batches_tracked"


@dataclass(frozen=True)
class Layout:
    """A checkpoint layout: the prefix its backbone keys carry and the heads it adds.

    Attributes
    ----------
    name
        Name used in reports.
    prefix
        Prefix in front of torchvision's key names (``""`` for none).
    heads
        Prefixes (after ``prefix``) of classifier heads, skipped on load.
    stem
        Stem the weights were trained with (``"torchvision"`` or ``"dmue"``).
    description
        Which published file(s) have this layout.
    """

    name: str
    prefix: str
    heads: tuple[str, ...]
    stem: str
    description: str


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "torchvision", "", ("fc.",), "torchvision",
            "torchvision names, no prefix: resnet18_msceleb.pth ('state_dict' entry) or a bare state_dict",
        ),
        Layout(
            "scn_ijba", "module.", ("fc.", "feature."), "torchvision",
            "SCN/RAN ijba_res18_naive.pth.tar: 'module.' + torchvision names, extra 'feature.*' and 'fc.*' heads",
        ),
        Layout(
            "dmue", "feat_net.", ("fc.",), "dmue",
            "DMUE: 'feat_net.' + torchvision names; stem without ReLU and with a 2x2/2 max-pool",
        ),
        Layout(
            "noisyfer", "backbone.", ("fc.",), "torchvision",
            "a noisyfer run's best_model.pt or checkpoint ('method' entry): 'backbone.' + torchvision names; "
            "the method's own heads are listed as unexpected and not loaded",
        ),
    )
}


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did with every key of a checkpoint.

    Attributes
    ----------
    path
        The checkpoint file.
    layout
        Detected layout name (a key of ``LAYOUTS``).
    container
        ``"state_dict"`` or ``"method"`` (a noisyfer run's file) when the tensors sat under that
        entry, ``"bare"`` otherwise.
    stem
        The model's stem: ``"dmue"`` exactly when the layout is DMUE's.
    loaded
        Model keys whose tensors were copied from the file.
    missing
        Model backbone keys (not ``fc.*``) the file has no fitting tensor for; they keep their values.
        BatchNorm ``num_batches_tracked`` counters are listed in ``absent_counters`` instead.
    unexpected
        File keys that correspond to nothing in the model (original names).
    skipped
        File keys of classifier heads, deliberately not loaded (original names).
    absent_counters
        ``num_batches_tracked`` keys the file lacks (checkpoints from torch < 0.4.1); they only
        count updates and do not change the network's output.
    mismatched
        ``"key: file shape vs model shape"`` entries left out with ``strict_shapes=False``.
    backbone_tensors
        Number of model backbone tensors that hold weights or running statistics (not counters).
    """

    path: str
    layout: str
    container: str
    stem: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    absent_counters: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    backbone_tensors: int = 0

    @property
    def loaded_fraction(self) -> float:
        """Share of the model's backbone weight/statistics tensors (counters excluded) loaded."""
        loaded = sum(1 for key in self.loaded if not key.endswith(_COUNTER_SUFFIX))
        return loaded / max(self.backbone_tensors, 1)

    @property
    def summary(self) -> str:
        """One line for logs."""
        parts = [
            f"pretrained {self.path}: layout {self.layout} ({self.container}), stem {self.stem}",
            f"loaded {len(self.loaded)} ({self.loaded_fraction:.0%} of backbone weights)",
            f"missing {len(self.missing)}",
            f"unexpected {len(self.unexpected)}",
            f"skipped {len(self.skipped)} classifier ({', '.join(self.skipped) or 'none'})",
        ]
        if self.absent_counters:
            parts.append(f"{len(self.absent_counters)} BN counters absent (old file, left as is)")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape mismatches left out")
        return "; ".join(parts)


def load_pretrained(
    model: ResNet,
    path: str | PathLike[str],
    *,
    strict_shapes: bool = True,
    min_fraction: float = 0.9,
    trust_file: bool = False,
) -> LoadReport:
    """Copy a published (or noisyfer-saved) ResNet checkpoint into ``model``'s backbone.

    Parameters
    ----------
    model
        A :class:`~noisyfer.models.ResNet`; its ``fc`` classifier (if any) is never loaded.
    path
        ``.pth`` / ``.pth.tar`` file in one of the ``LAYOUTS``, its tensors either at the top level
        or under a ``state_dict`` entry.
    strict_shapes
        Raise on a tensor whose shape differs from the model's (default); ``False`` leaves such
        tensors out and lists them in ``LoadReport.mismatched``.
    min_fraction
        Refuse the file when less than this share of the backbone's weight and running-statistics
        tensors would load.
    trust_file
        Allow unpickling arbitrary Python objects (``weights_only=False``); this can execute code
        from the file. Only for files from a trusted source that a weights-only load refuses.

    Returns
    -------
    LoadReport
        Counts and key lists; ``report.summary`` is one line for logs.

    Raises
    ------
    UserError
        Missing or unreadable file, no known layout, too few tensors matched, a shape mismatch
        (naming the key and both shapes), or a stem other than the checkpoint's.
    """
    if not isinstance(model, ResNet):
        raise TypeError(f"load_pretrained expects a noisyfer ResNet, got {type(model).__name__}")
    path = Path(path)
    state, container = _extract_state_dict(_read_checkpoint(path, trust_file=trust_file), path)
    model_state = model.state_dict()
    backbone_keys = [key for key in model_state if not key.startswith("fc.")]
    backbone = set(backbone_keys)
    layout = _detect_layout(state, backbone, path)
    if (layout.stem == "dmue") != (model.stem == "dmue"):
        raise UserError(
            f"{path}: a '{layout.name}' checkpoint was trained with the '{layout.stem}' stem but the model "
            f"has stem '{model.stem}'; build the model with stem='{layout.stem}' (resnet18/34/50)"
        )

    report = LoadReport(
        path=str(path), layout=layout.name, container=container, stem=model.stem,
        backbone_tensors=sum(1 for key in backbone_keys if not key.endswith(_COUNTER_SUFFIX)),
    )
    to_load: dict[str, torch.Tensor] = {}
    for file_key, value in state.items():
        name = file_key[len(layout.prefix):] if file_key.startswith(layout.prefix) else None
        if name is not None and name.startswith(layout.heads):
            report.skipped.append(file_key)
        elif name not in backbone or not torch.is_tensor(value):
            report.unexpected.append(file_key)
        elif value.shape != model_state[name].shape:
            mismatch = f"{file_key}: file {tuple(value.shape)} vs model {tuple(model_state[name].shape)}"
            if strict_shapes:
                raise UserError(f"{path}: shape mismatch for key {mismatch} (model key '{name}')")
            report.mismatched.append(mismatch)
        else:
            to_load[name] = value
    for key in backbone_keys:
        if key not in to_load:
            (report.absent_counters if key.endswith(_COUNTER_SUFFIX) else report.missing).append(key)
    report.loaded = list(to_load)

    if report.loaded_fraction < min_fraction:
        raise UserError(
            f"{path}: only {report.loaded_fraction:.0%} of the backbone's tensors would load "
            f"(need {min_fraction:.0%}) as layout '{layout.name}'; {_some('missing', report.missing)}, "
            f"{_some('unexpected', report.unexpected)}. Is it a checkpoint of this architecture?"
        )
    model_state.update(to_load)  # every model key present, so the strict load below checks us
    model.load_state_dict(model_state, strict=True)
    return report


def _some(what: str, keys: list[str]) -> str:
    return f"{len(keys)} {what}" + (f" (e.g. {', '.join(keys[:3])})" if keys else "")


def _read_checkpoint(path: Path, *, trust_file: bool) -> Any:
    if path.is_dir():
        raise UserError(f"pretrained weights '{path}': is a directory, expected a checkpoint file (.pth)")
    if not path.is_file():
        raise UserError(f"pretrained weights '{path}': no such file")
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise UserError(f"{path}: not a readable PyTorch checkpoint ({_first_cause(exc)})") from None
        if not trust_file:
            raise UserError(
                f"{path}: holds pickled Python objects that a weights-only load refuses "
                f"({_first_cause(exc)}); if you trust the file's source, load it with trust_file=True "
                "(unpickling can execute code from the file)"
            ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError, ... for corrupt files
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def _first_cause(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = [line for line in lines if "Unsupported global" in line]
    return (cause or lines or [type(exc).__name__])[0]


def _extract_state_dict(obj: Any, path: Path) -> tuple[Mapping[str, Any], str]:
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        return obj["state_dict"], "state_dict"
    if isinstance(obj, Mapping) and isinstance(obj.get("method"), Mapping):  # a noisyfer run's file
        return obj["method"], "method"
    if isinstance(obj, Mapping) and any(torch.is_tensor(value) for value in obj.values()):
        return obj, "bare"
    found = f"top-level keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
    raise UserError(f"{path}: expected a state_dict (or a dict with a 'state_dict' entry), found {found}")


def _detect_layout(state: Mapping[str, Any], backbone_keys: set[str], path: Path) -> Layout:
    matches = {
        layout.name: sum(
            1 for key in state if key.startswith(layout.prefix) and key[len(layout.prefix):] in backbone_keys
        )
        for layout in LAYOUTS.values()
    }
    best = max(matches, key=matches.__getitem__)
    if matches[best] == 0:
        known = "; ".join(f"{layout.name}: {layout.description}" for layout in LAYOUTS.values())
        raise UserError(
            f"{path}: no key matches a known checkpoint layout for this model (first keys: "
            f"{', '.join(list(map(str, state))[:5])}). Known layouts: {known}"
        )
    return LAYOUTS[best]
