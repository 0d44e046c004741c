"""Features, predictions and class activation maps from a trained run's weights.

The run's method is rebuilt with :func:`~noisyfer.engine.build.build_experiment` from its
``config.yaml`` and loaded from ``best_model.pt`` (or the last checkpoint), the weights under the
key ``"method"``. Any method works:

* features are ``method.backbone(x).features`` (the pooled last feature map), what a center loss
  pulls together and what paper 000's Table 2, Fig. 4 and Fig. 5 measure;
* predictions are ``method.predict(x)`` (what evaluation uses);
* a CAM (Zhou et al. 2016) uses the method's classifier ``fc`` when the method's prediction is that
  classifier on the pooled features (checked on the images themselves, up to a positive factor per
  sample, as SCN's attention weight); otherwise it is ``None``;
* a Grad-CAM (Selvaraju et al. 2017) needs no classifier knowledge: the gradient of the chosen
  class's logit with respect to the last feature map (the output of ``backbone.layer4``, caught by a
  forward hook, so it also works for methods such as DMUE that run the stages themselves), averaged
  over positions, weights the feature map's channels; the map is the ReLU of the weighted sum.

Images are uint8 (N, H, W, 3) arrays, evaluated in batches with the run's evaluation view.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError

__all__ = ["LoadedModel", "class_activation_maps", "extract", "grad_cams", "load_model"]


@dataclass
class LoadedModel:
    """A run's method with trained weights, in evaluation mode."""

    method: torch.nn.Module
    augment: object
    device: torch.device
    epoch: int | None
    checkpoint: Path

    def to_input(self, images: np.ndarray) -> Tensor:
        """uint8 (N, H, W, 3) -> normalised float (N, 3, H, W) on the device."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise UserError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        # a copy when the array is memory-mapped read-only (torch wants writable memory)
        x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return self.augment.eval(x)


def _checkpoint(run_dir: Path, checkpoint: str) -> Path:
    from ..engine.rundir import RunDirectory

    return RunDirectory.existing(run_dir).resolve_checkpoint(checkpoint, best_falls_back=True)


def load_model(run_dir: str | os.PathLike, *, checkpoint: str = "best", device: str | None = None,
               experiment=None) -> LoadedModel:
    """Rebuild the run's method and load ``best`` (falls back to the last checkpoint), ``last`` or a file.

    ``experiment`` may be an :class:`~noisyfer.engine.build.Experiment` already built from the run's
    config (to reuse its loaded data).
    """
    from ..config import load_yaml, resolve_config
    from ..engine.build import build_experiment, resolve_device

    run_dir = Path(run_dir)
    path = _checkpoint(run_dir, checkpoint)
    if experiment is None:
        tree = load_yaml(run_dir / "config.yaml")
        tree["resume"] = None
        if device:
            tree["device"] = device
        cfg = resolve_config(tree)
        experiment = build_experiment(cfg, device=resolve_device(cfg.device))
    from ..engine.rundir import load_method_weights

    method = experiment.method
    state = load_method_weights(method, path, map_location=experiment.device)
    method.eval()
    return LoadedModel(method=method, augment=experiment.augment, device=experiment.device,
                       epoch=state.get("epoch"), checkpoint=path)


@torch.no_grad()
def extract(model: LoadedModel, images: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, D), logits (N, C))`` as float32 arrays."""
    feats, logits = [], []
    for start in range(0, len(images), batch_size):
        x = model.to_input(images[start:start + batch_size])
        feats.append(model.method.backbone(x).features.float().cpu())
        logits.append(model.method.predict(x).float().cpu())
    if not feats:
        raise UserError("no images to extract features from")
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def _classes(classes, logits: Tensor) -> Tensor:
    if classes is None:
        return logits.argmax(1)
    classes = torch.as_tensor(np.asarray(classes), dtype=torch.long, device=logits.device).reshape(-1)
    if classes.shape[0] != logits.shape[0]:
        raise UserError(f"{classes.shape[0]} target classes for {logits.shape[0]} images")
    return classes


def _linear_classifier(model: LoadedModel, x: Tensor, out, logits: Tensor):
    """The ``fc`` weight if ``logits`` = positive factor x ``fc(features)`` on these images, else None."""
    fc = getattr(model.method, "fc", None)
    if not isinstance(fc, torch.nn.Linear) or fc.in_features != out.feature_map.shape[1]:
        return None
    plain = fc(out.features).float()
    # least-squares factor per sample; SCN scales its logits by a positive attention weight
    scale = (plain * logits).sum(1) / plain.pow(2).sum(1).clamp_min(1e-12)
    residual = (logits - scale[:, None] * plain).norm(dim=1)
    if (scale <= 0).any() or (residual > 1e-3 * logits.norm(dim=1).clamp_min(1e-6)).any():
        return None
    return fc.weight


@torch.no_grad()
def class_activation_maps(model: LoadedModel, images: np.ndarray, classes=None) -> np.ndarray | None:
    """(N, h, w) CAM of each image for ``classes`` (default: the predicted class), or ``None`` when
    the method's prediction is not its ``fc`` classifier on the pooled features."""
    from ..models import cam

    x = model.to_input(images)
    out = model.method.backbone(x)
    logits = model.method.predict(x).float()
    weight = _linear_classifier(model, x, out, logits)
    if weight is None:
        return None
    maps = cam(out.feature_map.float(), weight.float())
    target = _classes(classes, logits)
    return maps[torch.arange(len(target), device=maps.device), target].cpu().numpy()


@contextmanager
def _last_stage_output(method):
    """Collect the outputs of ``method.backbone.layer4`` during a forward pass."""
    stage = getattr(method.backbone, "layer4", None)
    if stage is None:
        raise UserError(f"Grad-CAM needs a backbone with a 'layer4' stage; {type(method.backbone).__name__} has none")
    caught: list[Tensor] = []

    def hook(_module, _inputs, output):
        output.retain_grad()
        caught.append(output)

    handle = stage.register_forward_hook(hook)
    try:
        yield caught
    finally:
        handle.remove()


def grad_cams(model: LoadedModel, images: np.ndarray, classes=None) -> np.ndarray:
    """(N, h, w) Grad-CAM of each image for ``classes`` (default: the predicted class)."""
    method = model.method
    x = model.to_input(images).requires_grad_(True)  # a graph even when the backbone is frozen
    params = [p for p in method.parameters() if p.requires_grad]
    with torch.enable_grad(), _last_stage_output(method) as caught:
        logits = method.predict(x).float()
        if not caught:
            raise UserError(f"method '{type(method).__name__}' predicts without its backbone's layer4")
        target = _classes(classes, logits)
        logits.gather(1, target[:, None]).sum().backward()
    fmap = caught[0]  # the first pass over layer4 (a method may run it again, e.g. on a flipped view)
    if fmap.grad is None:
        raise UserError(f"method '{type(method).__name__}': its prediction does not depend on layer4's output")
    weights = fmap.grad.float().mean(dim=(2, 3), keepdim=True)
    maps = torch.relu((weights * fmap.detach().float()).sum(1))
    for p in params:
        p.grad = None
    return maps.cpu().numpy()
