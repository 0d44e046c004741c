"""The prediction network of a trained method, as one ``nn.Module``: images in, logits out.

:class:`InferenceModel` wraps a method's own prediction path (``Method.predict``: LRN's Monte-Carlo
head with its fixed draws, NCCTFER's positive head, DMUE's main branch, RUL's mean embedding, ...)
behind the run's normalisation, so that it takes images as stored (uint8) or as floats in [0, 1]
and nothing else needs to know how the run was configured. The same module is what the bundle
loads, what :class:`~noisyfer.inference.recognizer.Recognizer` runs and what is exported to ONNX and
TorchScript.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..config import AugmentConfig, build_options
from ..engine.augment import Augmenter
from ..engine.build import create_method
from ..methods.base import Method
from ..methods.sample_state import SampleState
from ..registry import METHODS


class InferenceModel(nn.Module):
    """Normalisation plus a method's ``predict``: ``forward(images) -> logits`` (N, C).

    Parameters
    ----------
    method
        The trained method (in eval mode from here on).
    mean, std
        Per-channel normalisation of images in [0, 1], as the run used it (``augment.mean/std``).
    image_size
        Side of the square input the method was trained at.

    Notes
    -----
    ``forward`` takes (N, 3, H, W) uint8 images (read as x / 255) or float images in [0, 1]. It
    applies exactly the arithmetic of the run's evaluation view (``Augmenter.eval``), so the logits
    equal ``noisyfer eval``'s for the same images. For LRN (``inference=mc``) the outputs are the
    log of the Monte-Carlo averaged probabilities; ``softmax`` turns any output into probabilities.
    """

    def __init__(self, method: Method, *, mean, std, image_size: int):
        super().__init__()
        self.method = method.eval()
        self.image_size = int(image_size)
        mean = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
        scale = 1.0 / std
        # the same float32 operations as Augmenter.normalize, so the inputs match eval's bit for bit
        self.register_buffer("scale_float", scale, persistent=False)
        self.register_buffer("scale_uint8", scale / 255.0, persistent=False)
        self.register_buffer("shift", -mean / std, persistent=False)

    def train(self, mode: bool = True) -> "InferenceModel":  # an inference model stays in eval mode
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        scale = self.scale_uint8 if images.dtype == torch.uint8 else self.scale_float
        x = images.to(torch.float32) * scale + self.shift
        return self.method.predict(x)

    @torch.no_grad()
    def probabilities(self, images: Tensor) -> Tensor:
        """Class probabilities (N, C), float32."""
        return self(images).float().softmax(dim=1)


class ProbabilityModel(nn.Module):
    """``forward(images) -> (logits, probabilities)``: the graph that ONNX and TorchScript export."""

    def __init__(self, model: InferenceModel):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(images).float()
        return logits, logits.softmax(dim=1)


def options_dict(options: Any) -> dict:
    """A method's options dataclass as plain JSON-able values (``{}`` for a method without options)."""
    return dataclasses.asdict(options) if options is not None else {}


def build_method(*, method: str, method_options: Mapping[str, Any], num_classes: int, image_size: int,
                 backbone: str, backbone_options: Mapping[str, Any], augment: Mapping[str, Any]) -> Method:
    """An untrained method of the given configuration, without its training set.

    The per-sample state of training (relabels, memory banks, EMA targets) is sized for one sample:
    prediction never reads it. No pretrained weights are loaded: the caller loads the trained ones.
    """
    from ..models import create_backbone

    options = build_options(METHODS.get(method).options, dict(method_options), section="method")
    augment_config = build_options(AugmentConfig, dict(augment), section="augment")
    net = create_backbone(backbone, num_classes=None, pretrained=None, **dict(backbone_options))
    return create_method(method, backbone=net, num_classes=int(num_classes), num_train=1, options=options,
                         augment=Augmenter(augment_config, image_size=int(image_size)), image_size=int(image_size))


def sample_state_keys(method: nn.Module) -> set[str]:
    """State-dict keys of the method's per-sample training state (sized by the training set)."""
    keys = set()
    for prefix, module in method.named_modules():
        if isinstance(module, SampleState):
            keys.update(f"{prefix}.{name}" if prefix else name for name in module.names())
    return keys


def prediction_keys(model: InferenceModel) -> set[str]:
    """State-dict keys (of ``model.method``) that its prediction path reads.

    Found by exporting the prediction graph with ``torch.export`` and keeping the parameters and
    buffers that some operation uses; a module keeps all of its own tensors when any is used (batch
    norm's ``num_batches_tracked`` is not read in eval mode but belongs with its statistics).
    """
    example = torch.zeros(2, 3, model.image_size, model.image_size, dtype=torch.uint8,
                          device=next(model.parameters()).device)
    program = torch.export.export(model, (example,), strict=False)
    signature = program.graph_signature
    live = {node.name for node in program.graph.nodes if node.op == "placeholder" and node.users}
    names = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}
    used = {target.removeprefix("method.") for placeholder, target in names.items() if placeholder in live}
    owners = {key.rpartition(".")[0] for key in used} - {""}  # the method itself is no such module
    return {key for key in model.method.state_dict() if key in used or key.rpartition(".")[0] in owners}
