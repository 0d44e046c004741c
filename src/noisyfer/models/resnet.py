"""ResNet backbones in plain PyTorch with torchvision's module names, so published checkpoints load.

The module tree mirrors ``torchvision.models.resnet`` (v1.5: the stride of a Bottleneck sits on its
3x3 conv): ``conv1 bn1 relu maxpool layer1..layer4 avgpool fc``, blocks ``conv1 bn1 conv2 bn2
[conv3 bn3] downsample.0 downsample.1``. Initialisation is torchvision's: Kaiming-normal
(``fan_out``, ReLU gain) for convolutions, BatchNorm weight 1 and bias 0, PyTorch's default for the
linear classifier; :func:`init_weights` applies the same rule to re-initialise a network.

Stems (``stem=``):

``"torchvision"``
    7x7/2 conv, BN, ReLU, 3x3/2 max-pool with padding 1. The layout of the ImageNet and MS-Celeb
    checkpoints (``resnet18_msceleb.pth``, SCN/RAN's ``ijba_res18_naive.pth.tar``).
``"dmue"``
    DMUE's variant: 7x7/2 conv, BN, *no ReLU*, 2x2/2 max-pool. Same parameters as the torchvision
    stem (so the tensors of either checkpoint fit either stem) but a different function: weights
    trained with one stem are wrong for the other, and :func:`~noisyfer.models.load_pretrained`
    refuses such a pairing. The two pools give the same size for even inputs and differ by one for
    odd ones (a 45-pixel map pools to 23 with the torchvision stem, 22 with DMUE's).
``"small"``
    For 32-112 px images: a 3x3 conv with stride ``stem_stride`` (default 2), BN, ReLU, no
    max-pool. Used by the CPU-sized ``resnet_small`` / ``resnet_tiny``.

Every backbone returns a :class:`BackboneOutput`; methods that copy the last stage (DMUE keeps a
shared trunk up to ``layer3`` and K+1 copies of ``layer4``) use :meth:`ResNet.forward_until`,
:meth:`ResNet.forward_head` and the stage modules by name (``copy.deepcopy(model.layer4)``).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..errors import UserError

STEMS = ("torchvision", "dmue", "small")
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


class BackboneOutput(NamedTuple):
    """What every backbone's ``forward`` returns (a NamedTuple, so ``DataParallel`` can gather it).

    Attributes
    ----------
    feature_map
        (N, D, h, w): output of the last stage, before pooling (what class activation maps need).
    features
        (N, D): ``feature_map`` averaged over its spatial positions.
    logits
        (N, C) from the ``fc`` classifier, or ``None`` for a backbone built with ``num_classes=None``.
    """

    feature_map: torch.Tensor
    features: torch.Tensor
    logits: torch.Tensor | None


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34); the stride sits on the first conv."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, torchvision's v1.5), 1x1 expand by 4 (ResNet-50)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


class ResNet(nn.Module):
    """ResNet with torchvision's module names, returning :class:`BackboneOutput`.

    Parameters
    ----------
    block
        :class:`BasicBlock` or :class:`Bottleneck`.
    layers
        Number of blocks in each of the four stages, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
    widths
        Base width of each stage (a Bottleneck stage outputs 4x this); torchvision's is
        ``(64, 128, 256, 512)``. The stem outputs ``widths[0]`` channels.
    num_classes
        Size of the ``fc`` classifier, or ``None`` for no classifier (``logits`` is then ``None``
        and the model has no ``fc`` module).
    stem
        ``"torchvision"``, ``"dmue"`` or ``"small"``: see the module docstring.
    stem_stride
        Stride of the ``"small"`` stem's 3x3 conv (the other stems always reduce by 4).
    zero_init_residual
        Start the last BN of every block at weight 0, so each block begins as the identity
        (torchvision's option of the same name).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        *,
        widths: Sequence[int] = (64, 128, 256, 512),
        num_classes: int | None = None,
        stem: str = "torchvision",
        stem_stride: int = 2,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        layers, widths = tuple(layers), tuple(widths)
        _check_architecture(layers, widths, num_classes, stem, stem_stride)
        self.stem = stem
        self.stem_stride = stem_stride if stem == "small" else 4
        self.num_features = widths[-1] * block.expansion
        self.num_classes = num_classes

        if stem == "small":
            self.conv1 = _conv3x3(3, widths[0], stride=stem_stride)
        else:
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        # DMUE's stem has no activation between bn1 and the pool; Identity keeps the module tree
        # (and therefore the state_dict) the same for every stem.
        self.relu = nn.Identity() if stem == "dmue" else nn.ReLU(inplace=True)
        if stem == "torchvision":
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        elif stem == "dmue":
            self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        else:
            self.maxpool = nn.Identity()

        in_planes = widths[0]
        for index, (blocks, width) in enumerate(zip(layers, widths)):
            stage = _make_stage(block, in_planes, width, blocks, stride=1 if index == 0 else 2)
            self.add_module(f"layer{index + 1}", stage)
            in_planes = width * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if num_classes is not None:
            self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self, zero_init_residual=zero_init_residual)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names accepted by :meth:`forward_until`: ``("stem", "layer1", ..., "layer4")``."""
        return STAGES

    @property
    def reduction(self) -> int:
        """Total stride: input side / ``feature_map`` side (for sides divisible by it)."""
        return self.stem_stride * 8

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 -> bn1 -> relu (Identity for the DMUE stem) -> maxpool (Identity for the small stem)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_until(self, x: torch.Tensor, stage: str = "layer4") -> torch.Tensor:
        """Run the stem and the stages up to and including ``stage`` (one of :attr:`stage_names`)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage '{stage}'; expected one of {', '.join(STAGES)}")
        x = self.forward_stem(x)
        for name in STAGES[1 : STAGES.index(stage) + 1]:
            x = getattr(self, name)(x)
        return x

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Global average pooling: (N, D, h, w) -> (N, D)."""
        return torch.flatten(self.avgpool(feature_map), 1)

    def forward_head(self, feature_map: torch.Tensor) -> BackboneOutput:
        """Pool a last-stage map (this model's or a copy of ``layer4``'s) and apply ``fc`` if any."""
        features = self.pool(feature_map)
        logits = self.fc(features) if self.num_classes is not None else None
        return BackboneOutput(feature_map=feature_map, features=features, logits=logits)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """(N, 3, H, W) images -> :class:`BackboneOutput`."""
        return self.forward_head(self.forward_until(x, "layer4"))


def _check_architecture(
    layers: tuple[int, ...], widths: tuple[int, ...], num_classes: int | None, stem: str, stem_stride: int
) -> None:
    if stem not in STEMS:
        raise UserError(f"option 'stem': unknown stem '{stem}'; expected one of {', '.join(STEMS)}")
    if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
        raise UserError(f"option 'blocks': expected 4 positive integers (blocks per stage), got {layers}")
    if len(widths) != 4 or any(not isinstance(w, int) or w < 1 for w in widths):
        raise UserError(f"option 'widths': expected 4 positive integers (stage widths), got {widths}")
    if stem_stride not in (1, 2):
        raise UserError(f"option 'stem_stride': expected 1 or 2, got {stem_stride!r}")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise UserError(f"num_classes: expected a positive integer or None, got {num_classes!r}")


def _make_stage(
    block: type[BasicBlock] | type[Bottleneck], in_planes: int, planes: int, blocks: int, *, stride: int
) -> nn.Sequential:
    out_planes = planes * block.expansion
    downsample = None
    if stride != 1 or in_planes != out_planes:
        downsample = nn.Sequential(_conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))
    stage = [block(in_planes, planes, stride, downsample)]
    stage += [block(out_planes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*stage)


def init_weights(model: nn.Module, *, zero_init_residual: bool = False) -> nn.Module:
    """(Re-)initialise ``model`` in place with torchvision's ResNet rule; returns ``model``.

    Every ``Conv2d`` gets Kaiming-normal weights (``fan_out``, ReLU gain); every ``BatchNorm2d`` weight 1,
    bias 0 and fresh running statistics; with ``zero_init_residual`` the last BN of every residual block
    starts at weight 0. ``Linear`` layers are left as they are (a new ``nn.Linear`` already has PyTorch's
    default; call its ``reset_parameters()`` to redraw it). This is what :class:`ResNet` applies when
    it is built, so a backbone re-initialised with the same ``zero_init_residual`` is distributed
    like a fresh one; it draws from torch's global generator.

    Examples
    --------
    >>> import torch
    >>> from noisyfer.models import create_backbone, init_weights
    >>> net = create_backbone("resnet_tiny")
    >>> _ = net.bn1.weight.data.fill_(3.0)
    >>> init_weights(net).bn1.weight.detach().max().item()
    1.0
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.reset_running_stats()
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, (BasicBlock, Bottleneck)):
                nn.init.zeros_(module.last_bn().weight)
    return model
