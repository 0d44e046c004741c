"""ResNet backbones: torchvision-compatible names and sizes, outputs, stems, partial forwards, registry."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from noisyfer.errors import UserError
from noisyfer.models import BackboneOutput, ResNet, cam, create_backbone
from noisyfer.registry import BACKBONES

BN_ENTRIES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_state_keys(layers: tuple[int, ...], bottleneck: bool, *, with_fc: bool = True) -> list[str]:
    """State-dict keys of torchvision's resnet, in its order, written out from its module tree."""

    def conv_bn(prefix: str, conv: str, bn: str) -> list[str]:
        return [f"{prefix}{conv}.weight"] + [f"{prefix}{bn}.{entry}" for entry in BN_ENTRIES]

    keys = conv_bn("", "conv1", "bn1")
    convs = 3 if bottleneck else 2
    for stage, blocks in enumerate(layers, start=1):
        for index in range(blocks):
            prefix = f"layer{stage}.{index}."
            for n in range(1, convs + 1):
                keys += conv_bn(prefix, f"conv{n}", f"bn{n}")
            # torchvision adds a projection where stride or width changes: the first block of
            # stages 2-4, and of stage 1 for Bottleneck (64 -> 256 channels).
            if index == 0 and (stage > 1 or bottleneck):
                keys += conv_bn(prefix, "downsample.0", "downsample.1")
    if with_fc:
        keys += ["fc.weight", "fc.bias"]
    return keys


TORCHVISION = {
    # name: (layers, bottleneck, parameters with a 1000-class fc, state_dict entries)
    "resnet18": ((2, 2, 2, 2), False, 11_689_512, 122),
    "resnet34": ((3, 4, 6, 3), False, 21_797_672, 218),
    "resnet50": ((3, 4, 6, 3), True, 25_557_032, 320),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_state_dict_keys_and_parameter_count_match_torchvision(name):
    layers, bottleneck, parameters, entries = TORCHVISION[name]
    model = create_backbone(name, num_classes=1000)
    keys = list(model.state_dict())
    assert keys == torchvision_state_keys(layers, bottleneck)
    assert len(keys) == entries
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_resnet_shapes_and_strides_follow_torchvision_v1_5():
    r18 = create_backbone("resnet18", num_classes=1000).state_dict()
    assert r18["conv1.weight"].shape == (64, 3, 7, 7)
    assert r18["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert r18["fc.weight"].shape == (1000, 512)
    r50 = create_backbone("resnet50", num_classes=1000)
    assert r50.state_dict()["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert r50.state_dict()["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    # v1.5: the stride of a downsampling Bottleneck is on its 3x3 conv, not on the first 1x1.
    assert r50.layer2[0].conv1.stride == (1, 1) and r50.layer2[0].conv2.stride == (2, 2)


def test_initialisation_is_kaiming_fan_out_and_unit_batchnorm():
    torch.manual_seed(0)
    model = create_backbone("resnet18", num_classes=7)
    weight = model.layer4[1].conv2.weight  # fan_out = 512 * 3 * 3
    assert weight.std().item() == pytest.approx(math.sqrt(2.0 / (512 * 9)), rel=0.02)
    assert weight.mean().abs().item() < 1e-3
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
    zero = create_backbone("resnet50", zero_init_residual=True)
    assert torch.all(zero.layer3[2].bn3.weight == 0) and torch.all(zero.layer3[2].bn2.weight == 1)


def test_same_seed_gives_same_weights():
    torch.manual_seed(3)
    first = create_backbone("resnet_small", num_classes=7).state_dict()
    torch.manual_seed(3)
    second = create_backbone("resnet_small", num_classes=7).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


# (name, options, input side, expected feature-map side, num_features)
OUTPUT_CASES = [
    ("resnet18", {}, 32, 1, 512),
    ("resnet18", {}, 64, 2, 512),
    ("resnet18", {}, 112, 4, 512),
    ("resnet18", {}, 224, 7, 512),
    ("resnet18", {"stem": "dmue"}, 112, 4, 512),
    ("resnet34", {}, 64, 2, 512),
    ("resnet34", {}, 112, 4, 512),
    ("resnet50", {}, 32, 1, 2048),
    ("resnet50", {}, 112, 4, 2048),
    ("resnet_small", {}, 32, 2, 256),
    ("resnet_small", {}, 48, 3, 256),
    ("resnet_small", {}, 64, 4, 256),
    ("resnet_small", {}, 112, 7, 256),
    ("resnet_small", {"stem_stride": 1}, 32, 4, 256),
    ("resnet_small", {"widths": [8, 16, 24, 40], "blocks": [2, 1, 1, 2]}, 64, 4, 40),
    ("resnet_tiny", {}, 48, 3, 128),
    ("resnet_tiny", {}, 64, 4, 128),
]


@pytest.mark.parametrize(("name", "options", "side", "map_side", "width"), OUTPUT_CASES)
def test_output_shapes(name, options, side, map_side, width):
    torch.manual_seed(0)
    model = create_backbone(name, num_classes=7, **options).eval()
    out = model(torch.randn(2, 3, side, side))
    assert isinstance(out, BackboneOutput)
    assert model.num_features == width
    assert out.feature_map.shape == (2, width, map_side, map_side)
    assert out.features.shape == (2, width) and out.logits.shape == (2, 7)
    assert torch.allclose(out.features, out.feature_map.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(out.logits, out.features @ model.fc.weight.T + model.fc.bias, atol=1e-5)


def test_small_net_is_a_residual_network_with_downsampling():
    model = create_backbone("resnet_small", zero_init_residual=True).eval()
    assert [getattr(model, f"layer{i}")[0].conv1.stride for i in range(1, 5)] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert model.layer1[0].downsample is None  # stem and stage 1 are both 32 wide
    assert all(getattr(model, f"layer{i}")[0].downsample is not None for i in range(2, 5))
    # With the last BN of each block at 0 a block reduces to relu(shortcut): proof of the skip path.
    x = torch.randn(2, 32, 16, 16)
    assert torch.equal(model.layer1(x), torch.relu(x))


def test_without_num_classes_there_is_no_classifier():
    model = create_backbone("resnet18")
    assert not hasattr(model, "fc")
    assert not any(key.startswith("fc.") for key in model.state_dict())
    assert list(model.state_dict()) == torchvision_state_keys((2, 2, 2, 2), False, with_fc=False)
    out = model(torch.randn(1, 3, 64, 64))
    assert out.logits is None and out.features.shape == (1, 512)


def test_partial_forward_and_copied_last_stage_reproduce_forward():
    torch.manual_seed(0)
    model = create_backbone("resnet_tiny", num_classes=5).eval()
    x = torch.randn(3, 3, 48, 48)
    full = model(x)
    trunk = model.forward_until(x, "layer3")
    assert trunk.shape == (3, 64, 6, 6)
    branch = copy.deepcopy(model.layer4)  # what DMUE does for each of its K+1 branches
    from_copy = model.forward_head(branch(trunk))
    assert torch.allclose(from_copy.logits, full.logits, atol=1e-6)
    stem = model.forward_stem(x)
    assert torch.allclose(model.forward_until(x, "stem"), stem)
    assert torch.allclose(model.layer1(stem), model.forward_until(x, "layer1"))
    assert model.stage_names == ("stem", "layer1", "layer2", "layer3", "layer4")
    with pytest.raises(ValueError, match="layer5"):
        model.forward_until(x, "layer5")


def test_dmue_stem_has_no_relu_and_a_2x2_max_pool():
    torch.manual_seed(0)
    plain = create_backbone("resnet18", stem="torchvision").eval()
    dmue = create_backbone("resnet18", stem="dmue").eval()
    dmue.load_state_dict(plain.state_dict())  # same tensors: only the stem's function differs
    assert list(plain.state_dict()) == list(dmue.state_dict())
    x = torch.randn(2, 3, 90, 90)  # conv1 gives 45x45, an odd side where the two pools differ
    before_pool = {name: m.relu(m.bn1(m.conv1(x))) for name, m in (("plain", plain), ("dmue", dmue))}
    assert before_pool["plain"].min() >= 0
    assert (before_pool["dmue"] < 0).float().mean() > 0.3  # BN output is centred: negatives survive
    assert plain.forward_stem(x).shape[-2:] == (23, 23)  # floor((45 + 2 - 3) / 2) + 1
    assert dmue.forward_stem(x).shape[-2:] == (22, 22)  # floor(45 / 2)
    assert torch.equal(dmue.forward_stem(x), nn.functional.max_pool2d(before_pool["dmue"], 2, 2))
    assert plain.forward_stem(torch.randn(1, 3, 224, 224)).shape[-2:] == (56, 56)
    assert dmue.forward_stem(torch.randn(1, 3, 224, 224)).shape[-2:] == (56, 56)


def test_registry_and_create_backbone_errors():
    assert {"resnet18", "resnet34", "resnet50", "resnet_small", "resnet_tiny"} <= set(BACKBONES.names())
    with pytest.raises(UserError, match="unknown backbone 'resnet19'.*did you mean 'resnet18'"):
        create_backbone("resnet19")
    with pytest.raises(UserError, match="unknown option 'width'.*widths"):
        create_backbone("resnet_small", width=(8, 16, 32, 64))
    with pytest.raises(UserError, match="unknown option 'widths'"):
        create_backbone("resnet18", widths=(8, 16, 32, 64))
    with pytest.raises(UserError, match="option 'stem'.*'relu'"):
        create_backbone("resnet18", stem="relu")
    with pytest.raises(UserError, match="option 'widths'"):
        create_backbone("resnet_small", widths=(8, 16, 32))
    with pytest.raises(UserError, match="option 'stem_stride'"):
        create_backbone("resnet_tiny", stem_stride=4)
    with pytest.raises(UserError, match="num_classes"):
        create_backbone("resnet_tiny", num_classes=0)


def test_yaml_lists_become_tuples_and_create_returns_resnet():
    model = create_backbone("resnet_tiny", widths=[4, 8, 8, 16], blocks=[1, 2, 1, 1])
    assert isinstance(model, ResNet) and model.num_features == 16 and len(model.layer2) == 2


def test_cam_matches_hand_computation():
    feature_map = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (N=1, D=2, h=1, w=2)
    weight = torch.tensor([[1.0, 0.0], [1.0, -1.0], [0.5, 2.0]])  # (C=3, D=2)
    expected = torch.tensor([[[[1.0, 2.0]], [[-2.0, -2.0]], [[6.5, 9.0]]]])
    assert torch.equal(cam(feature_map, weight), expected)
    with pytest.raises(ValueError, match=r"\(1, 2, 1, 2\).*\(2, 3\)"):
        cam(feature_map, weight.T)


def test_cam_averages_to_the_bias_free_logits():
    torch.manual_seed(0)
    model = create_backbone("resnet_tiny", num_classes=7).eval()
    out = model(torch.randn(2, 3, 64, 64))
    maps = cam(out.feature_map, model.fc.weight)
    assert maps.shape == (2, 7, 4, 4)
    assert torch.allclose(maps.mean(dim=(2, 3)) + model.fc.bias, out.logits, atol=1e-5)
