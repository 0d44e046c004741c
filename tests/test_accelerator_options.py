"""``train.channels_last`` and ``train.compile``: same training numbers as the default path, same checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

import noisyfer
from noisyfer.engine.rundir import RunDirectory


def _losses(run_dir) -> list[float]:
    return [r["train_loss"] for r in RunDirectory(run_dir).read_metrics()]


@pytest.fixture
def reference_run(tiny_overrides):
    cfg = noisyfer.config_from_args(None, [*tiny_overrides, "method=ce", "train.epochs=1", "name=reference"])
    return noisyfer.train(cfg).run_dir


# channels_last: the same kernels on another layout. compile: fused kernels that reduce in another order
# (batch norm statistics); the difference grows over the epoch's 14 steps to about 0.2 % of the loss.
@pytest.mark.parametrize(("option", "rel"), [("train.channels_last=true", 1e-3), ("train.compile=true", 1e-2)])
def test_option_trains_like_the_default_path(option, rel, tiny_overrides, reference_run):
    cfg = noisyfer.config_from_args(None, [*tiny_overrides, "method=ce", "train.epochs=1", option, "name=variant"])
    result = noisyfer.train(cfg)
    # The same arithmetic in another memory layout / fused by the compiler: equal up to float rounding.
    assert _losses(result.run_dir) == pytest.approx(_losses(reference_run), rel=rel)
    reference = torch.load(RunDirectory(reference_run).best_model, weights_only=False)["method"]
    variant = torch.load(RunDirectory(result.run_dir).best_model, weights_only=False)["method"]
    assert list(variant) == list(reference)  # compile in place: no "_orig_mod." prefix in checkpoints
    assert json.loads((result.run_dir / "summary.json").read_text())["status"] == "finished"


def test_channels_last_puts_conv_weights_in_nhwc(tiny_overrides):
    from noisyfer.engine.trainer import Trainer

    cfg = noisyfer.config_from_args(None, [*tiny_overrides, "method=ce", "train.channels_last=true"])
    run = RunDirectory.create(cfg.out, "layout")
    trainer = Trainer(cfg, run, resuming=False)
    convs = [m.weight for m in trainer.method.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)  # 1x1 kernels are both; the 3x3 ones are NHWC only
