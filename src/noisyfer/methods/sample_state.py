"""Per-sample state of a method (relabels, EMA targets, memory banks), indexed by dataset index.

State lives in the method, never in the dataset object; changes go through :meth:`SampleState.update`.
In a distributed run every rank runs the method's step on the whole global batch (only the
backbone's forward is split over the ranks, :mod:`noisyfer.engine.distributed`), so every rank
applies the same updates and the replicas stay identical without communication.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..host_sync import host_reads_are_free


class SampleState(nn.Module):
    """Named per-sample tensors, shape ``(num_samples, ...)``, saved with the method's state dict.

    Parameters
    ----------
    num_samples
        Size of the training set; every tensor's first dimension.

    Examples
    --------
    >>> state = SampleState(num_samples=4)
    >>> state.register("labels", torch.tensor([0, 1, 2, 1]))
    >>> state.update("labels", torch.tensor([3]), torch.tensor([0]))
    >>> state["labels"].tolist()
    [0, 1, 2, 0]
    """

    def __init__(self, num_samples: int):
        super().__init__()
        self.num_samples = int(num_samples)
        self._names: list[str] = []

    def register(self, name: str, initial: Tensor) -> None:
        """Add a tensor; ``initial`` must have ``num_samples`` rows."""
        if initial.shape[0] != self.num_samples:
            raise ValueError(
                f"state '{name}' has {initial.shape[0]} rows, expected {self.num_samples} (one per training sample)"
            )
        if name in self._names:
            raise ValueError(f"state '{name}' is registered twice")
        self.register_buffer(name, initial.clone())
        self._names.append(name)

    def names(self) -> list[str]:
        return list(self._names)

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._names:
            raise KeyError(f"no per-sample state '{name}' (have: {', '.join(self._names)})")
        return getattr(self, name)

    @torch.no_grad()
    def update(self, name: str, indices: Tensor, values: Tensor) -> None:
        """Set rows ``indices`` of ``name`` to ``values``.

        Within one call an index should appear once; if it appears several times (sampling with
        replacement), the last occurrence wins, as in a sequential loop.
        """
        target = self[name]
        indices = indices.to(target.device, torch.long)
        values = values.detach().to(target.device, target.dtype)
        if values.shape[1:] != target.shape[1:] or values.shape[0] != indices.shape[0]:
            raise ValueError(
                f"update of '{name}': got values {tuple(values.shape)} for {indices.shape[0]} indices, "
                f"rows must be {tuple(target.shape[1:])}"
            )
        # The bounds check reads values back from the device; on an accelerator it would stall the step.
        if host_reads_are_free(indices) and indices.numel() and (
            int(indices.min()) < 0 or int(indices.max()) >= self.num_samples
        ):
            raise IndexError(f"update of '{name}': index outside 0..{self.num_samples - 1}")
        # index_put_ with duplicate indices is undefined in order: every occurrence of an index writes the
        # values of its last occurrence, so the order does not matter (and no boolean mask, whose
        # data-dependent size would make an accelerator wait for the host).
        order = torch.arange(indices.shape[0], device=indices.device)
        last = torch.full((self.num_samples,), -1, dtype=torch.long, device=indices.device)
        last.scatter_reduce_(0, indices, order, reduce="amax")
        target[indices] = values[last[indices]]
