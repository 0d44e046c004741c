"""Features, CAM and Grad-CAM from any registered method (no knowledge of its heads needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisyfer.analysis.features import LoadedModel, class_activation_maps, extract, grad_cams, load_model
from noisyfer.config import config_from_args
from noisyfer.engine.build import build_experiment
from noisyfer.errors import UserError
from noisyfer.registry import METHODS


def _model(tiny_overrides, method: str) -> tuple[LoadedModel, np.ndarray]:
    cfg = config_from_args(None, tiny_overrides + [f"method={method}", "device=cpu"])
    exp = build_experiment(cfg)
    exp.method.eval()
    model = LoadedModel(method=exp.method, augment=exp.augment, device=exp.device, epoch=None, checkpoint=None)
    return model, exp.test.images[:5]


@pytest.mark.parametrize("method", sorted(e.name for e in METHODS))
def test_every_method_gives_features_and_grad_cams(tiny_overrides, method):
    model, images = _model(tiny_overrides, method)
    feats, logits = extract(model, images, batch_size=2)
    assert feats.shape == (5, model.method.backbone.num_features) and logits.shape == (5, 7)
    maps = grad_cams(model, images)
    h = model.method.backbone(model.to_input(images)).feature_map.shape[-1]
    assert maps.shape == (5, h, h) and np.isfinite(maps).all() and (maps >= 0).all()
    assert all(p.grad is None for p in model.method.parameters())  # no gradient left behind
    cam = class_activation_maps(model, images)
    assert cam is None or cam.shape == (5, h, h)


def test_grad_cam_of_a_linear_classifier_is_the_rectified_cam(tiny_overrides):
    # logits = W mean_{ij}(F) + b, so d logit_c / dF_dij = W_cd / (h w) and Grad-CAM = relu(CAM_c) / (h w)
    model, images = _model(tiny_overrides, "ce")
    torch.manual_seed(0)
    with torch.no_grad():
        model.method.fc.weight.normal_()
    classes = np.array([0, 3, 6, 2, 1])
    cam = class_activation_maps(model, images, classes)
    grad = grad_cams(model, images, classes)
    hw = cam.shape[1] * cam.shape[2]
    assert cam.min() < 0  # the ReLU matters in this check
    np.testing.assert_allclose(grad, np.maximum(cam, 0) / hw, rtol=1e-4, atol=1e-6)


def test_cam_needs_the_prediction_to_be_the_fc_on_pooled_features(tiny_overrides):
    scn, images = _model(tiny_overrides, "scn")  # logits = attention weight (> 0) x fc(features): a CAM exists
    assert class_activation_maps(scn, images) is not None
    rul, images = _model(tiny_overrides, "rul")  # fc sits on a learned embedding, not the feature map
    assert class_activation_maps(rul, images) is None
    with pytest.raises(UserError, match="uint8"):
        extract(scn, images.astype(np.float32))


def test_load_model_reads_the_best_weights(tiny_overrides):
    import noisyfer

    result = noisyfer.train(config_from_args(None, tiny_overrides + ["train.epochs=1"]))
    model = load_model(result.run_dir, device="cpu")
    assert model.epoch == 1 and model.checkpoint.name == "best_model.pt"
    saved = torch.load(result.run_dir / "best_model.pt", weights_only=False)["method"]["fc.weight"]
    assert torch.equal(model.method.fc.weight.detach(), saved)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_model(result.run_dir, checkpoint=str(result.run_dir / "nope.pt"))
