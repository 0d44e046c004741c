"""Self-describing models: a trained run reduced to what prediction needs.

An inference bundle is one file (``noisyfer export RUN_DIR --out model.pt``) that ``torch.load``
reads with ``weights_only=True`` (plain tensors and JSON-like values, no pickled code)::

    {"noisyfer_model": {                 # metadata, see BUNDLE_FIELDS
         "format": "noisyfer-model", "format_version": 1, "noisyfer_version": "0.1.0",
         "method": "ce", "method_options": {...}, "num_classes": 7, "class_names": [...],
         "image_size": 64, "mean": [...], "std": [...], "augment": {...}, "template": "rafdb",
         "backbone": "resnet18", "backbone_options": {...},
         "summary": {"accuracy_best": ..., "method": ..., "noise": {...}, ...},
         "left_out": [...]},             # state-dict keys prediction does not read (not stored)
     "state_dict": {...}}                # weights of the method's prediction path

Nothing of the training set is kept: no per-sample state (relabels, memory banks, EMA targets), no
data paths other than the run's own, no auxiliary branches or heads that prediction does not use.
A run directory loads the same way (:func:`load_model` takes either), from ``config.yaml``,
``summary.json`` and ``best_model.pt``, without the training data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import load_yaml, resolve_config
from ..errors import UserError
from .model import InferenceModel, build_method, options_dict, prediction_keys, sample_state_keys

FORMAT_NAME = "noisyfer-model"
FORMAT_VERSION = 1
DEFAULT_TEMPLATE = "rafdb"
#: Summary fields of the run copied into a bundle (what the model is and how good it was).
SUMMARY_FIELDS = ("method", "data", "backbone", "noise", "seed", "epochs", "epochs_done", "accuracy_best",
                  "best_epoch", "accuracy_last", "accuracy_last5", "balanced_accuracy_at_best_epoch",
                  "balanced_accuracy_last", "per_class_accuracy_best", "pretrained", "status")


@dataclass
class Bundle:
    """Metadata plus the weights of a method's prediction path.

    Attributes
    ----------
    metadata
        Plain JSON-able mapping (see the module docstring).
    state_dict
        Tensors of the method (keys as in ``Method.state_dict()``), minus ``metadata["left_out"]``.
    """

    metadata: dict
    state_dict: dict[str, torch.Tensor] = field(repr=False)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.metadata["class_names"])

    @property
    def image_size(self) -> int:
        return int(self.metadata["image_size"])

    def build(self, *, device: torch.device | str = "cpu") -> InferenceModel:
        """The :class:`InferenceModel` with these weights, in eval mode on ``device``."""
        m = self.metadata
        method = build_method(method=m["method"], method_options=m["method_options"], num_classes=m["num_classes"],
                              image_size=m["image_size"], backbone=m["backbone"],
                              backbone_options=m["backbone_options"], augment=m["augment"])
        per_sample = sample_state_keys(method) | training_sized_keys(method, self.state_dict)
        expected_missing = set(m["left_out"]) | per_sample
        weights = {k: v for k, v in self.state_dict.items() if k not in per_sample}
        result = method.load_state_dict(weights, strict=False)
        missing, unexpected = set(result.missing_keys), set(result.unexpected_keys)
        if unexpected or not missing <= expected_missing:
            problems = sorted(unexpected)[:3] + sorted(missing - expected_missing)[:3]
            raise UserError(f"the weights do not fit method '{m['method']}' with backbone '{m['backbone']}' "
                            f"(e.g. {', '.join(problems)}); was the bundle written by another noisyfer version "
                            f"({m.get('noisyfer_version')})?")
        return InferenceModel(method, mean=m["mean"], std=m["std"], image_size=m["image_size"]).to(device)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({"noisyfer_model": self.metadata, "state_dict": self.state_dict}, tmp)
        os.replace(tmp, path)
        return path


def training_sized_keys(method, state_dict: dict[str, torch.Tensor]) -> set[str]:
    """Keys of ``state_dict`` sized by the training set outside ``SampleState`` (e.g. LDLVA's per-sample
    lambdas, a parameter): one row in ``method`` (built for one training sample), N rows in the weights."""
    own = method.state_dict()
    return {k for k, v in state_dict.items()
            if k in own and own[k].shape != v.shape and own[k].dim() >= 1 and own[k].shape[0] == 1
            and own[k].shape[1:] == v.shape[1:]}


def run_image_size(run_dir: Path, cfg, summary: dict) -> int:
    """Input size of a run: recorded in its summary, else its configuration or its dataset's metadata."""
    if summary.get("image_size"):
        return int(summary["image_size"])
    if cfg.data.image_size:
        return int(cfg.data.image_size)
    own = getattr(cfg.data_options, "image_size", None)
    if own:
        return int(own)
    if cfg.data.root:
        from ..data.format import read_meta

        try:
            return int(read_meta(cfg.data.root)["splits"]["train"]["image_shape"][0])
        except (UserError, OSError, KeyError):
            pass
    raise UserError(f"{run_dir}: cannot tell the model's input size (summary.json has no image_size, the config "
                    f"no data.image_size, and the dataset {cfg.data.root} is not readable)")


def bundle_from_run(run_dir: str | os.PathLike, *, checkpoint: str = "best", template: str = DEFAULT_TEMPLATE,
                    prune: bool = True) -> Bundle:
    """The bundle of a run directory's ``best`` / ``last`` weights (or a checkpoint file).

    With ``prune`` the weights prediction does not read (auxiliary branches, unused heads, class
    centers) are left out; loading a run directly skips that step, which costs one graph export.
    """
    import json

    from ..engine.rundir import RunDirectory

    run = RunDirectory.existing(run_dir)
    tree = load_yaml(run.config)
    tree["resume"] = None
    cfg = resolve_config(tree)
    summary = json.loads(run.summary.read_text()) if run.summary.is_file() else {}
    path = run.resolve_checkpoint(checkpoint, best_falls_back=True)
    state = torch.load(path, map_location="cpu", weights_only=False)
    class_names = summary.get("class_names")
    if not class_names:
        raise UserError(f"{run.path}: summary.json has no class names (has the run finished an epoch?)")
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "noisyfer_version": __version__,
        "method": cfg.method, "method_options": options_dict(cfg.method_options),
        "num_classes": len(class_names), "class_names": list(class_names),
        "image_size": run_image_size(run.path, cfg, summary),
        "mean": list(cfg.augment.mean), "std": list(cfg.augment.std), "augment": options_dict(cfg.augment),
        "template": template, "backbone": cfg.model.backbone, "backbone_options": dict(cfg.model.options),
        "summary": {**{k: summary[k] for k in SUMMARY_FIELDS if k in summary},
                    "run_dir": str(run.path), "checkpoint": path.name, "checkpoint_epoch": state.get("epoch")},
        "left_out": [],
    }
    return bundle_from_state(metadata, state["method"], prune=prune)


def bundle_from_state(metadata: dict, state_dict: dict[str, torch.Tensor], *, prune: bool = True) -> Bundle:
    """A bundle of a method's full ``state_dict`` (as training saves it) and its metadata.

    The per-sample training state is dropped; with ``prune`` so is every tensor the prediction path
    does not read (found by :func:`~noisyfer.inference.model.prediction_keys`), and the bundle
    records their names in ``metadata["left_out"]`` so that loading can check nothing else is missing.
    """
    metadata = {**metadata, "left_out": []}
    model = Bundle(metadata=metadata, state_dict=dict(state_dict)).build()
    training_sized = sample_state_keys(model.method) | training_sized_keys(model.method, state_dict)
    keep = prediction_keys(model) if prune else set(model.method.state_dict())
    if prune and keep & training_sized:
        raise UserError(f"method '{metadata['method']}' predicts with tensors sized by its training set "
                        f"({', '.join(sorted(keep & training_sized)[:3])}): it cannot be bundled")
    keep -= training_sized
    metadata["left_out"] = sorted(set(model.method.state_dict()) - keep)
    return Bundle(metadata=metadata, state_dict={k: v for k, v in state_dict.items() if k in keep})


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Read a bundle file written by :meth:`Bundle.save` (tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a TorchScript archive, an ONNX file, a checkpoint with pickled objects...
        raise UserError(f"{path}: not a noisyfer model bundle ({type(exc).__name__}); give a run directory or a "
                        f"file written by `noisyfer export`") from None
    metadata = payload.get("noisyfer_model") if isinstance(payload, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise UserError(f"{path}: not a noisyfer model bundle; give a run directory or a file written by "
                        f"`noisyfer export` (format {FORMAT_NAME})")
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: bundle format {metadata['format_version']} is newer than this noisyfer reads "
                        f"({FORMAT_VERSION}); upgrade noisyfer")
    return Bundle(metadata=metadata, state_dict=payload["state_dict"])


def load_bundle(source: str | os.PathLike, *, checkpoint: str = "best") -> Bundle:
    """A bundle from a file written by ``noisyfer export`` or from a run directory."""
    source = Path(source)
    if source.is_dir():
        return bundle_from_run(source, checkpoint=checkpoint, prune=False)
    return read_bundle(source)


def load_model(source: str | os.PathLike, *, device: torch.device | str = "cpu",
               checkpoint: str = "best") -> tuple[InferenceModel, dict[str, Any]]:
    """The :class:`InferenceModel` and metadata of a bundle file or a run directory."""
    bundle = load_bundle(source, checkpoint=checkpoint)
    return bundle.build(device=device), bundle.metadata
