"""Inference bundles: what they hold, that they predict exactly as the method, and that runs load without data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import noisyfer
from noisyfer.config import AugmentConfig, config_from_args
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import build_experiment, create_method
from noisyfer.engine.loader import TensorLoader
from noisyfer.engine.trainer import Precision, evaluate
from noisyfer.errors import UserError
from noisyfer.inference.bundle import bundle_from_run, bundle_from_state, load_bundle, read_bundle
from noisyfer.inference.model import options_dict, sample_state_keys
from noisyfer.models import create_backbone
from noisyfer.registry import METHODS
from tests.conftest import make_tiny_split

SIZE = 32


def random_method(name: str, *, seed: int = 0):
    """An untrained method of the registry with random weights (prediction parity needs no training)."""
    torch.manual_seed(seed)
    entry = METHODS.get(name)
    options = entry.options() if entry.options else None
    method = create_method(name, backbone=create_backbone("resnet_tiny"), num_classes=7, num_train=10,
                           options=options, image_size=SIZE, augment=Augmenter(AugmentConfig(), image_size=SIZE))
    metadata = {"format": "noisyfer-model", "format_version": 1, "noisyfer_version": noisyfer.__version__,
                "method": name, "method_options": options_dict(options), "num_classes": 7,
                "class_names": list(make_tiny_split(7).class_names), "image_size": SIZE,
                "mean": AugmentConfig().mean, "std": AugmentConfig().std,
                "augment": options_dict(AugmentConfig()), "template": "rafdb", "backbone": "resnet_tiny",
                "backbone_options": {}, "summary": {"method": name}}
    return method.eval(), metadata



@pytest.mark.parametrize("name", METHODS.names())
def test_bundle_predicts_as_the_method_and_holds_no_training_state(name, tmp_path):
    method, metadata = random_method(name)
    bundle = bundle_from_state(metadata, method.state_dict())
    assert not set(bundle.state_dict) & sample_state_keys(method)
    assert set(bundle.state_dict) | set(bundle.metadata["left_out"]) == set(method.state_dict())
    path = bundle.save(tmp_path / "model.pt")
    loaded = read_bundle(path)  # weights_only: tensors and plain values only
    model = loaded.build()
    images = torch.from_numpy(make_tiny_split(16, seed=3).images).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        expected = method.predict(method.augment.eval(images))
        got = model(images)
    assert torch.equal(got, expected)


def test_dmue_bundle_leaves_out_the_auxiliary_branches():
    method, metadata = random_method("dmue")
    bundle = bundle_from_state(metadata, method.state_dict())
    left = bundle.metadata["left_out"]
    assert "aux_weight" in left and any(k.startswith("branches.aux.") for k in left)
    assert not any(k.startswith("uncertainty.") for k in bundle.state_dict)
    assert any(k.startswith("necks.") for k in bundle.state_dict) and "fc.weight" in bundle.state_dict


def test_ncctfer_bundle_keeps_only_the_positive_head():
    method, metadata = random_method("ncctfer")
    bundle = bundle_from_state(metadata, method.state_dict())
    heads = {k.split(".")[0] for k in bundle.state_dict if "head" in k.split(".")[0]}
    assert heads == {"positive_head"}


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle_run")
    from noisyfer.data.format import save_dataset

    root = tmp / "tiny"
    save_dataset({"train": make_tiny_split(224, seed=1), "test": make_tiny_split(70, seed=2)}, root)
    overrides = ["data=noisyfer", f"data.root={root}", "model.backbone=resnet_tiny", "train.batch_size=32",
                 "train.epochs=1", f"out={tmp / 'runs'}", "seed=0", "method=ce"]
    result = noisyfer.train(config_from_args(None, overrides))
    return result.run_dir, overrides, root


def test_run_bundle_equals_eval_and_describes_the_run(ce_run, tmp_path):
    run_dir, overrides, _ = ce_run
    bundle = bundle_from_run(run_dir)
    m = bundle.metadata
    summary = noisyfer.engine.rundir.RunDirectory(run_dir).summary.read_text()
    import json

    summary = json.loads(summary)
    assert m["class_names"] == summary["class_names"] and m["image_size"] == SIZE == summary["image_size"]
    assert m["summary"]["accuracy_best"] == summary["accuracy_best"] and m["summary"]["method"] == "ce"
    assert m["summary"]["noise"] == summary["noise"] and m["backbone"] == "resnet_tiny"
    assert m["mean"] == AugmentConfig().mean and m["std"] == AugmentConfig().std
    path = bundle.save(tmp_path / "ce.pt")
    model = read_bundle(path).build()

    exp = build_experiment(config_from_args(None, overrides))
    exp.method.load_state_dict(torch.load(run_dir / "best_model.pt", weights_only=False)["method"])
    loader = TensorLoader(exp.test, batch_size=256, device=torch.device("cpu"))
    preds, logits = evaluate(exp.method, loader, Precision("off", torch.device("cpu")), exp.augment)
    images = torch.from_numpy(np.ascontiguousarray(exp.test.images)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        got = model(images).numpy()
    np.testing.assert_allclose(got, logits, atol=1e-5, rtol=0)
    assert np.array_equal(got.argmax(1), preds)


def test_run_directory_loads_without_its_data(ce_run, tmp_path):
    run_dir, _, root = ce_run
    moved = tmp_path / "run"
    shutil.copytree(run_dir, moved)
    hidden = root.with_name("hidden")
    root.rename(hidden)
    try:
        bundle = load_bundle(moved)
        assert bundle.image_size == SIZE and not set(bundle.state_dict) & {"state.labels"}
        assert bundle.build()(torch.zeros(1, 3, SIZE, SIZE, dtype=torch.uint8)).shape == (1, 7)
    finally:
        hidden.rename(root)


def test_not_a_bundle_is_a_user_error(tmp_path):
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(2)}, junk)
    with pytest.raises(UserError, match="not a noisyfer model bundle"):
        read_bundle(junk)
    with pytest.raises(UserError, match="model not found"):
        load_bundle(tmp_path / "missing.pt")


def test_export_command_writes_a_bundle_and_torchscript(ce_run, tmp_path, capsys):
    from noisyfer.cli.main import main

    run_dir, _, _ = ce_run
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m.pt")]) == 0
    printed = capsys.readouterr().out
    assert "ce on resnet_tiny, 7 classes, input 32x32, template rafdb" in printed
    assert read_bundle(tmp_path / "m.pt").metadata["summary"]["run_dir"] == str(run_dir)
    assert main(["export", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.ts")]) == 0
    traced = torch.jit.load(str(tmp_path / "m.ts"))
    logits, probs = traced(torch.zeros(3, 3, SIZE, SIZE, dtype=torch.uint8))
    assert logits.shape == probs.shape == (3, 7)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m.pt"), "--template", "nope"]) == 2
    assert "unknown alignment template 'nope'" in capsys.readouterr().err
