"""``noisyfer export``: a run (or bundle) as an inference bundle, an ONNX graph or a TorchScript module.

The ONNX and TorchScript files hold the whole prediction path including the normalisation: input
``images``, uint8 (N, 3, H, W) RGB at the model's input size (N dynamic); outputs ``logits`` and
``probabilities`` (N, C) float32. The bundle's metadata (class names, input size, mean/std,
alignment template, method, run summary) travels with them: ONNX ``metadata_props["noisyfer"]`` and
the TorchScript extra file ``noisyfer.json``, both JSON.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import torch

from ..errors import UserError
from .bundle import Bundle, bundle_from_run, read_bundle
from .model import InferenceModel, ProbabilityModel

FORMATS = ("bundle", "onnx", "torchscript")
#: ONNX opset of exported graphs (ONNX 1.13+, onnxruntime 1.14+).
ONNX_OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "probabilities")


def format_from_suffix(path: str | os.PathLike) -> str:
    """``.onnx`` -> onnx, ``.ts`` / ``.torchscript`` -> torchscript, anything else -> bundle."""
    suffix = Path(path).suffix.lower()
    return {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}.get(suffix, "bundle")


def _example(model: InferenceModel, batch: int = 2) -> torch.Tensor:
    return torch.zeros(batch, 3, model.image_size, model.image_size, dtype=torch.uint8)


def export_onnx(model: InferenceModel, path: str | os.PathLike, *, metadata: dict | None = None,
                opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` (normalisation included) as an ONNX graph with a dynamic batch axis."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError("ONNX export needs the packages onnx and onnxscript: pip install 'noisyfer[export]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = ProbabilityModel(model.cpu()).eval()
    batch = torch.export.Dim("batch")
    # the exporter logs that torchvision's detection ops cannot be registered (noisyfer uses none)
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, (_example(model),), input_names=[INPUT_NAME],
                                        output_names=list(OUTPUT_NAMES), dynamic_shapes={"images": {0: batch}},
                                        opset_version=opset, dynamo=True, verbose=False)
    finally:
        registration.setLevel(level)
    if metadata is not None:
        program.model.metadata_props["noisyfer"] = json.dumps(metadata)
    tmp = path.with_name(f".{path.name}.tmp")
    program.save(tmp)
    os.replace(tmp, path)
    return path


def export_torchscript(model: InferenceModel, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write ``model`` (normalisation included, uint8 input) as a traced TorchScript module."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = ProbabilityModel(model.cpu()).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(net, (_example(model),), check_trace=False)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.jit.save(traced, str(tmp), _extra_files={"noisyfer.json": json.dumps(metadata or {})})
    os.replace(tmp, path)
    return path


def export(source: str | os.PathLike, out: str | os.PathLike, *, format: str | None = None,
           checkpoint: str = "best", template: str | None = None, opset: int = ONNX_OPSET) -> tuple[Path, Bundle]:
    """Export a run directory or a bundle file to ``out`` as ``format`` (default: from the suffix)."""
    fmt = format or format_from_suffix(out)
    if fmt not in FORMATS:
        raise UserError(f"--format: expected one of {', '.join(FORMATS)}, got '{fmt}'")
    source = Path(source)
    if source.is_dir():
        kwargs = {"template": template} if template else {}
        bundle = bundle_from_run(source, checkpoint=checkpoint, **kwargs)
    else:
        bundle = read_bundle(source)
        if template:
            bundle.metadata["template"] = template
    _check_template(bundle.metadata["template"])
    if fmt == "bundle":
        return bundle.save(out), bundle
    model = bundle.build()
    metadata = {k: v for k, v in bundle.metadata.items() if k != "left_out"}
    metadata.update({"input": {"name": INPUT_NAME, "dtype": "uint8", "layout": "NCHW RGB",
                               "size": [bundle.image_size, bundle.image_size]},
                     "outputs": list(OUTPUT_NAMES)})
    if fmt == "onnx":
        metadata["opset"] = opset
        return export_onnx(model, out, metadata=metadata, opset=opset), bundle
    return export_torchscript(model, out, metadata=metadata), bundle


def _check_template(name: str) -> None:
    from ..faces import ALIGN_TEMPLATES

    if name not in ALIGN_TEMPLATES:
        raise UserError(f"--template: unknown alignment template '{name}'; available: {', '.join(ALIGN_TEMPLATES)}")


def onnx_parity(path: str | os.PathLike, bundle: Bundle, *, images: torch.Tensor | None = None,
                seed: int = 0) -> float | None:
    """Max absolute logit difference between onnxruntime running ``path`` and PyTorch running ``bundle``.

    On ``images`` (uint8 (N, 3, H, W)), by default 8 random ones; None when onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError:
        return None
    model = bundle.build()
    if images is None:
        generator = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (8, 3, bundle.image_size, bundle.image_size), dtype=torch.uint8,
                               generator=generator)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run([OUTPUT_NAMES[0]], {INPUT_NAME: images.numpy()})[0]
    with torch.no_grad():
        reference = model(images).float().numpy()
    return float(abs(logits - reference).max())
