"""The registered backbones and :func:`create_backbone`, the one way configs build them.

=================  ==============  =====================  ==========================================
name               blocks          widths                 use
=================  ==============  =====================  ==========================================
``resnet18``       2-2-2-2 basic   64-128-256-512         the papers' backbone (MS-Celeb weights)
``resnet34``       3-4-6-3 basic   64-128-256-512         torchvision ResNet-34
``resnet50``       3-4-6-3 bottl.  64-128-256-512 (x4)    EAC / SMEC's larger backbone
``resnet_small``   1-1-1-1 basic   32-64-128-256          CPU demo and tests, 32-112 px inputs
``resnet_tiny``    1-1-1-1 basic   16-32-64-128           unit tests, quick smoke runs
=================  ==============  =====================  ==========================================

The small nets use the ``"small"`` stem (3x3/2 conv, no max-pool, total stride 16), so a 48 px
face gives a 3x3 last feature map, 64 px gives 4x4 and 112 px gives 7x7, like ResNet-18 at 224 px.
``benchmarks/bench_backbones.py`` measures their training throughput.

Every backbone made by :func:`create_backbone` remembers how it was made (its ``spec``, a
:class:`BackboneSpec`), so a method can build more networks of the run's kind::

    twin = backbone.spec.create()                  # same kind, the run's pretrained weights if any
    fresh = backbone.spec.create(pretrained=False)  # same kind, freshly initialised
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from os import PathLike
from typing import Any

from ..errors import UserError
from ..registry import BACKBONES, register_backbone
from .pretrained import load_pretrained
from .resnet import BasicBlock, Bottleneck, ResNet

logger = logging.getLogger(__name__)


@dataclass
class ResNetOptions:
    """Options of ``resnet18`` / ``resnet34`` / ``resnet50``.

    Attributes
    ----------
    stem
        ``"torchvision"`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) or ``"dmue"`` (no ReLU, 2x2/2
        max-pool; required by DMUE's checkpoint).
    zero_init_residual
        Start every block's last BN weight at 0.
    """

    stem: str = "torchvision"
    zero_init_residual: bool = False


@dataclass
class SmallResNetOptions:
    """Options of ``resnet_small`` / ``resnet_tiny`` (defaults differ per name, see the table).

    Attributes
    ----------
    widths
        Four stage widths.
    blocks
        Four block counts (BasicBlocks per stage).
    stem_stride
        Stride of the 3x3 stem conv: 2 (total stride 16) or 1 (total stride 8, for 32 px inputs).
    zero_init_residual
        Start every block's last BN weight at 0.
    """

    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    stem_stride: int = 2
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        # YAML gives lists; keep tuples so options compare and hash the same either way.
        self.widths = tuple(self.widths)
        self.blocks = tuple(self.blocks)


@dataclass
class TinyResNetOptions(SmallResNetOptions):
    """Options of ``resnet_tiny``: those of ``resnet_small`` with half the widths."""

    widths: tuple[int, ...] = (16, 32, 64, 128)


@register_backbone("resnet18", options=ResNetOptions)
def resnet18(*, num_classes: int | None = None, stem: str = "torchvision", zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 (11.7 M parameters with a 1000-class fc), torchvision layout."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, stem=stem, zero_init_residual=zero_init_residual)


@register_backbone("resnet34", options=ResNetOptions)
def resnet34(*, num_classes: int | None = None, stem: str = "torchvision", zero_init_residual: bool = False) -> ResNet:
    """ResNet-34 (21.8 M parameters with a 1000-class fc), torchvision layout."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, stem=stem, zero_init_residual=zero_init_residual)


@register_backbone("resnet50", options=ResNetOptions)
def resnet50(*, num_classes: int | None = None, stem: str = "torchvision", zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 (25.6 M parameters with a 1000-class fc), torchvision layout (v1.5)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, stem=stem, zero_init_residual=zero_init_residual)


@register_backbone("resnet_small", options=SmallResNetOptions)
def resnet_small(*, num_classes: int | None = None, **options: Any) -> ResNet:
    """CPU-sized ResNet for 32-112 px faces: 4 residual stages of BasicBlocks, 3x3/2 stem."""
    return _small(SmallResNetOptions(**options), num_classes)


@register_backbone("resnet_tiny", options=TinyResNetOptions)
def resnet_tiny(*, num_classes: int | None = None, **options: Any) -> ResNet:
    """Half-width ``resnet_small`` for unit tests and smoke runs."""
    return _small(TinyResNetOptions(**options), num_classes)


def _small(options: SmallResNetOptions, num_classes: int | None) -> ResNet:
    return ResNet(
        BasicBlock,
        options.blocks,
        widths=options.widths,
        num_classes=num_classes,
        stem="small",
        stem_stride=options.stem_stride,
        zero_init_residual=options.zero_init_residual,
    )


@dataclass(frozen=True)
class BackboneSpec:
    """How a backbone was built: registered name, resolved options, pretrained checkpoint.

    Attributes
    ----------
    name
        Registered backbone name.
    options
        Its resolved options (every field of its options dataclass).
    pretrained
        Checkpoint its weights were loaded from, or ``None``.

    Examples
    --------
    >>> net = create_backbone("resnet_tiny", stem_stride=1)
    >>> twin = net.spec.create()
    >>> twin is not net, twin.stem_stride, twin.spec == net.spec
    (True, 1, True)
    """

    name: str
    options: dict
    pretrained: str | None = None

    def create(self, *, pretrained: bool = True, num_classes: int | None = None) -> ResNet:
        """A new backbone of this kind: with this spec's pretrained weights (``pretrained=True``,
        the file is read again) or freshly initialised from torch's global generator."""
        return create_backbone(self.name, num_classes=num_classes,
                               pretrained=self.pretrained if pretrained else None, **self.options)


def create_backbone(
    name: str,
    *,
    num_classes: int | None = None,
    pretrained: str | PathLike[str] | None = None,
    **options: Any,
) -> ResNet:
    """Build a registered backbone, optionally loading pretrained weights.

    Parameters
    ----------
    name
        A registered backbone name (``noisyfer.registry.BACKBONES.names()``).
    num_classes
        Size of the ``fc`` classifier; ``None`` builds the backbone without one.
    pretrained
        Path of a checkpoint for :func:`~noisyfer.models.load_pretrained` (the classifier is never
        taken from it). Its :class:`~noisyfer.models.LoadReport` is logged at INFO level and kept
        as the model's ``pretrained_report`` attribute.
    **options
        Fields of the backbone's options dataclass (e.g. ``stem="dmue"`` for ``resnet18``).

    Returns
    -------
    ResNet
        The model, with a ``spec`` attribute (:class:`BackboneSpec`) to build more of its kind.

    Raises
    ------
    UserError
        Unknown name, unknown or invalid option, or a checkpoint that does not fit.
    """
    entry = BACKBONES.get(name)
    valid = [f.name for f in fields(entry.options)] if entry.options is not None else []
    for option in options:
        if option not in valid:
            raise UserError(
                f"backbone '{name}': unknown option '{option}'; valid options: {', '.join(valid) or 'none'}"
            )
    try:
        resolved = asdict(entry.options(**options)) if entry.options is not None else {}
    except TypeError as exc:  # a value of the wrong type reaching a dataclass __post_init__
        raise UserError(f"backbone '{name}': invalid options {options}: {exc}") from None
    model = entry.obj(num_classes=num_classes, **resolved)
    model.spec = BackboneSpec(name=name, options=resolved, pretrained=None if pretrained is None else str(pretrained))
    if pretrained is not None:
        report = load_pretrained(model, pretrained)
        logger.info(report.summary)
        model.pretrained_report = report
    return model
