"""Every registered method honours the engine contract (new methods are tested here for free)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import noisyfer
from noisyfer.config import AugmentConfig, config_from_args
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method, resolve_device
from noisyfer.engine.loader import TensorLoader
from noisyfer.methods.base import StepOutput, TrainingSetup
from noisyfer.models import create_backbone
from noisyfer.registry import METHODS
from tests.conftest import make_tiny_split

METHOD_NAMES = METHODS.names()

#: Settings of the 2-epoch end-to-end run on a randomly initialised tiny net for methods whose paper
#: schedule assumes long training, by registered name (a subclass needs its own entry).
SMOKE_OVERRIDES: dict[str, tuple[str, ...]] = {
    # Every loss term stays on; the main branch is ramped in over ramp_epoch epochs, and dropout 0.5
    # before the BN neck plus heads at 10x the run's lr keep the evaluated main branch from settling.
    # L_sp at the paper's constant weight, as this check was tuned: scaled by the tiny run's 140 ramp steps
    # (sp_weight_scaling=steps: 1000 x (140 / 1700)^2 = 6.8) dmue's best epoch lands at 0.49, at the threshold.
    "dmue": ("method.dropout=0", "method.head_lr_ratio=3", "method.sp_weight_scaling=none"),
    "dmue_c": ("method.dropout=0", "method.head_lr_ratio=3"),
    # 32 px faces (2x2 maps): independent erasing of a quarter of the face changes whole cells, and the
    # consistency between the two erased views outweighs the cross-entropy for longer than two epochs
    # (best accuracy 0.40-0.45, lam 1 or 5).
    "eac": ("augment.erasing=0",),
}


def test_smoke_overrides_name_registered_methods():
    assert set(SMOKE_OVERRIDES) <= set(METHOD_NAMES)


def _method(name: str, data, seed: int = 0):
    torch.manual_seed(seed)
    entry = METHODS.get(name)
    options = entry.options() if entry.options else None
    method = create_method(name, backbone=create_backbone("resnet_tiny"), num_classes=data.num_classes,
                           num_train=len(data), options=options, image_size=data.images.shape[1],
                           augment=Augmenter(AugmentConfig(), image_size=data.images.shape[1]))
    loader = TensorLoader(data, batch_size=32, device=torch.device("cpu"), columns=method.columns)
    method.setup(TrainingSetup(labels=loader.labels, columns=data.columns, class_names=data.class_names,
                               epochs=2, steps_per_epoch=loader.num_batches(drop_last=True),
                               device=torch.device("cpu")))
    return method, loader


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_step_gives_finite_loss_and_gradients(name):
    data = make_tiny_split(128)
    method, loader = _method(name, data)
    method.train()
    method.on_epoch_start(1)
    for batch in loader.train_batches(seed=0, epoch=1):
        out = method.training_step(batch, epoch=1)
        assert isinstance(out, StepOutput)
        if out.loss is not None:  # a method may skip a batch (DMUE: fewer than 2 samples of a class)
            break
    else:
        pytest.fail("every batch of the epoch was skipped")
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in method.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "no gradient reaches the backbone"
    if out.logits is not None:
        assert out.logits.shape == (len(batch), data.num_classes)
    assert isinstance(method.on_epoch_end(1), dict)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_predict_shape_and_state_dict_round_trip(name):
    data = make_tiny_split(32)
    method, _ = _method(name, data, seed=0)
    method.eval()
    x = method.augment.eval(torch.rand(5, 3, 32, 32))
    logits = method.predict(x)
    assert logits.shape == (5, data.num_classes)
    twin, _ = _method(name, data, seed=1)
    twin.load_state_dict(method.state_dict())
    twin.eval()
    assert torch.equal(twin.predict(x), logits)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_trains_end_to_end_through_the_engine(name, tiny_overrides):
    smoke = list(SMOKE_OVERRIDES.get(name, ()))
    result = noisyfer.train(config_from_args(None, tiny_overrides + [f"method={name}", "noise.kind=symmetric",
                                                                     "noise.rate=0.2"] + smoke))
    s = result.summary
    assert s["status"] == "finished" and s["epochs_done"] == 2
    assert 0.0 <= s["accuracy_last"] <= 1.0
    assert s["accuracy_best"] >= s["accuracy_last"]
    # the tiny task is trivially learnable: anything near chance (1/7) means the method is broken
    assert s["accuracy_best"] > 0.5
