"""load_pretrained: the three published MS-Celeb checkpoint layouts, exact reports, refusals."""

from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch

from noisyfer.errors import UserError
from noisyfer.models import create_backbone, load_pretrained

BACKBONE_WEIGHTS = 100  # resnet18 non-fc state entries without the 20 num_batches_tracked counters
COUNTERS = 20


def trained_like_state(name: str = "resnet18", *, seed: int = 1, num_classes: int | None = 1000, **options):
    """State of a randomly initialised model whose BN statistics and counters are not the defaults."""
    torch.manual_seed(seed)
    model = create_backbone(name, num_classes=num_classes, **options)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var")):
            value.copy_(torch.rand_like(value) + 0.5)
        elif key.endswith("num_batches_tracked"):
            value.fill_(1234)
    return OrderedDict((key, value.clone()) for key, value in state.items())


def backbone_items(state):
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def assert_backbone_equal(model, source, *, counters=True):
    target = model.state_dict()
    for key, value in backbone_items(source).items():
        if key.endswith("num_batches_tracked") and not counters:
            continue
        assert torch.equal(target[key], value), key


def fresh(name="resnet18", **options):
    torch.manual_seed(99)
    return create_backbone(name, **options)


def test_msceleb_layout_state_dict_with_fc(tmp_path):
    source = trained_like_state()  # 1000-class fc: another number of classes than the target's
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save({"state_dict": source}, path)
    model = fresh(num_classes=7)
    fc_before = model.fc.weight.detach().clone()
    report = load_pretrained(model, path)
    assert_backbone_equal(model, source)
    assert torch.equal(model.fc.weight, fc_before)
    assert (report.layout, report.container, report.stem) == ("torchvision", "state_dict", "torchvision")
    assert len(report.loaded) == BACKBONE_WEIGHTS + COUNTERS
    assert report.skipped == ["fc.weight", "fc.bias"]
    assert report.missing == [] and report.unexpected == [] and report.absent_counters == []
    assert report.loaded_fraction == 1.0
    assert "layout torchvision (state_dict)" in report.summary and "loaded 120 (100%" in report.summary


def test_scn_ijba_layout_old_torch_file(tmp_path):
    source = trained_like_state()
    wrapped = OrderedDict(
        (f"module.{key}", value) for key, value in backbone_items(source).items()
        if not key.endswith("num_batches_tracked")  # torch < 0.4.1 had no BN counters
    )
    wrapped["module.feature.weight"] = torch.randn(256, 512)
    wrapped["module.feature.bias"] = torch.randn(256)
    wrapped["module.fc.weight"] = torch.randn(7, 256)
    wrapped["module.fc.bias"] = torch.randn(7)
    checkpoint = {"epoch": 30, "arch": "resnet18", "best_prec1": np.float64(91.5), "state_dict": wrapped}
    path = tmp_path / "ijba_res18_naive.pth.tar"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    # Written by numpy 1, the scalar constructor carries its old module name.
    path.write_bytes(path.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    model = fresh(num_classes=7)
    report = load_pretrained(model, path)
    assert_backbone_equal(model, source, counters=False)
    assert all(model.state_dict()[key] == 0 for key in report.absent_counters)
    assert (report.layout, report.container) == ("scn_ijba", "state_dict")
    assert len(report.loaded) == BACKBONE_WEIGHTS and len(report.absent_counters) == COUNTERS
    heads = ["module.fc.bias", "module.fc.weight", "module.feature.bias", "module.feature.weight"]
    assert sorted(report.skipped) == heads
    assert report.missing == [] and report.unexpected == []
    assert "20 BN counters absent" in report.summary


def test_dmue_layout_requires_and_fills_the_dmue_stem(tmp_path):
    source = trained_like_state(stem="dmue", num_classes=None)
    state = OrderedDict((f"feat_net.{key}", value) for key, value in source.items())
    state["feat_net.fc.weight"] = torch.randn(7, 512)
    state["feat_net.fc.bias"] = torch.randn(7)
    state["classifier.weight"] = torch.randn(7, 512)
    state["uncertainty.0.weight"] = torch.randn(7, 14)
    path = tmp_path / "dmue_msceleb.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match=r"dmue_msceleb\.pth.*'dmue' stem.*stem='dmue'"):
        load_pretrained(fresh(num_classes=7), path)
    model = fresh(num_classes=7, stem="dmue")
    report = load_pretrained(model, path)
    assert_backbone_equal(model, source)
    assert (report.layout, report.container, report.stem) == ("dmue", "bare", "dmue")
    assert len(report.loaded) == BACKBONE_WEIGHTS + COUNTERS
    assert report.skipped == ["feat_net.fc.weight", "feat_net.fc.bias"]
    assert report.unexpected == ["classifier.weight", "uncertainty.0.weight"]
    assert report.missing == []


def test_bare_torchvision_state_dict_into_model_without_classifier(tmp_path):
    source = trained_like_state("resnet50", num_classes=None)
    path = tmp_path / "r50.pt"
    torch.save(source, path)
    model = fresh("resnet50")
    report = load_pretrained(model, path)
    assert_backbone_equal(model, source)
    assert (report.layout, report.container) == ("torchvision", "bare")
    assert len(report.loaded) == 320 - 2 and report.skipped == [] and report.unexpected == []


def test_torchvision_weights_refused_by_a_dmue_stem_model(tmp_path):
    path = tmp_path / "tv.pth"
    torch.save({"state_dict": trained_like_state()}, path)
    with pytest.raises(UserError, match="'torchvision' stem.*has stem 'dmue'"):
        load_pretrained(fresh(stem="dmue"), path)


def test_create_backbone_loads_and_keeps_the_report(tmp_path):
    source = trained_like_state("resnet_small", num_classes=7)
    path = tmp_path / "small.pth"
    torch.save({"state_dict": source}, path)
    model = create_backbone("resnet_small", num_classes=3, pretrained=path)
    assert_backbone_equal(model, source)
    assert model.pretrained_report.skipped == ["fc.weight", "fc.bias"]
    assert model.fc.out_features == 3


def test_file_matching_no_layout_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.conv.weight": torch.zeros(3), "fc.weight": torch.zeros(7, 512)}, path)
    with pytest.raises(UserError, match=r"other\.pth: no key matches a known checkpoint layout.*encoder\.conv\.weight"):
        load_pretrained(fresh(), path)


def test_shape_mismatch_names_the_key_and_both_shapes_and_leaves_model_untouched(tmp_path):
    source = trained_like_state()
    source["layer3.0.conv1.weight"] = torch.randn(256, 128, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": source}, path)
    model = fresh()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    expected = (
        r"bad\.pth: shape mismatch for key layer3\.0\.conv1\.weight: "
        r"file \(256, 128, 5, 5\) vs model \(256, 128, 3, 3\)"
    )
    with pytest.raises(UserError, match=expected):
        load_pretrained(model, path)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in before.items())
    report = load_pretrained(model, path, strict_shapes=False)
    assert report.mismatched == ["layer3.0.conv1.weight: file (256, 128, 5, 5) vs model (256, 128, 3, 3)"]
    assert report.missing == ["layer3.0.conv1.weight"] and len(report.loaded) == 119
    assert torch.equal(model.layer3[0].conv1.weight, before["layer3.0.conv1.weight"])


def test_too_few_matching_tensors_is_refused(tmp_path):
    source = trained_like_state()
    partial = {key: value for key, value in source.items() if key.startswith(("conv1", "bn1", "layer1", "layer2"))}
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    # conv1 + bn1 (5 tensors), layer1 (2 x 10), layer2 (2 x 10 + downsample 5): 50 of 100
    expected = r"partial\.pth: only 50% of the backbone's tensors would load \(need 90%\).*50 missing \(e\.g\. layer3"
    with pytest.raises(UserError, match=expected):
        load_pretrained(fresh(), path)
    report = load_pretrained(fresh(), path, min_fraction=0.5)
    assert len(report.loaded) == 60 and len(report.missing) == 50 and len(report.absent_counters) == 10


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": trained_like_state()}, path)
    with pytest.raises(UserError, match="r18.pth: only"):
        load_pretrained(fresh("resnet34"), path)  # resnet18's tensors all fit, but cover too little
    expected = r"r18.pth: shape mismatch for key conv1\.weight: file \(64, 3, 7, 7\) vs model \(32, 3, 3, 3\)"
    with pytest.raises(UserError, match=expected):
        load_pretrained(fresh("resnet_small"), path)


def test_missing_unreadable_and_non_state_dict_files(tmp_path):
    with pytest.raises(UserError, match="nowhere.pth'?: no such file"):
        load_pretrained(fresh(), tmp_path / "nowhere.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"PK\x03\x04 not a checkpoint" * 4)
    with pytest.raises(UserError, match=r"garbage\.pth: not a readable PyTorch checkpoint"):
        load_pretrained(fresh(), garbage)
    tensor_file = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(UserError, match=r"tensor\.pth: expected a state_dict.*Tensor"):
        load_pretrained(fresh(), tensor_file)
    with pytest.raises(TypeError, match="noisyfer ResNet"):
        load_pretrained(torch.nn.Linear(2, 2), tensor_file)


def test_pickled_objects_need_trust_file(tmp_path):
    source = trained_like_state()
    path = tmp_path / "with_args.pth.tar"
    torch.save({"state_dict": source, "args": argparse.Namespace(lr=0.1)}, path)
    expected = r"with_args\.pth\.tar: holds pickled Python objects.*argparse\.Namespace.*trust_file=True"
    with pytest.raises(UserError, match=expected):
        load_pretrained(fresh(), path)
    model = fresh()
    report = load_pretrained(model, path, trust_file=True)
    assert len(report.loaded) == BACKBONE_WEIGHTS + COUNTERS
    assert_backbone_equal(model, source)


def test_a_noisyfer_runs_weights_load_as_a_backbone(tmp_path):
    """best_model.pt of a run (``{'epoch', 'method'}``, keys 'backbone.*' + the method's heads)."""
    source = trained_like_state("resnet_tiny", num_classes=None)
    method_state = OrderedDict((f"backbone.{key}", value) for key, value in source.items())
    method_state["fc.weight"] = torch.zeros(7, 64)
    method_state["heads.attention.weight"] = torch.zeros(1, 64)
    torch.save({"epoch": 3, "method": method_state}, tmp_path / "best_model.pt")
    model = fresh("resnet_tiny", num_classes=None)
    report = load_pretrained(model, tmp_path / "best_model.pt")
    assert (report.layout, report.container, report.stem) == ("noisyfer", "method", "small")
    assert report.unexpected == ["fc.weight", "heads.attention.weight"] and report.skipped == []
    assert report.loaded_fraction == 1.0 and not report.missing
    assert_backbone_equal(model, source)
