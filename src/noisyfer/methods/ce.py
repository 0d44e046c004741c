"""Cross-entropy baseline: a backbone and a linear classifier trained on the given labels.

The reference point of every robust method: nothing in it resists label noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import register_method
from .base import Batch, Method, StepOutput


@dataclass
class CEOptions:
    """Options of the ``ce`` method.

    Attributes
    ----------
    label_smoothing
        Label smoothing of the cross-entropy (0 = plain CE).
    dropout
        Dropout on the pooled features before the classifier.
    """

    label_smoothing: float = 0.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register_method("ce", options=CEOptions)
class CrossEntropy(Method):
    """Plain cross-entropy on the (possibly noisy) training labels."""

    def __init__(self, *, options: CEOptions, **common):
        super().__init__(options=options, **common)
        self.dropout = nn.Dropout(options.dropout)
        self.fc = nn.Linear(self.backbone.num_features, self.num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.dropout(self.backbone(images).features))

    def training_step(self, batch: Batch, *, epoch: int) -> StepOutput:
        logits = self(self.augment.train(batch.images))
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.options.label_smoothing)
        return StepOutput(loss=loss, logits=logits)
