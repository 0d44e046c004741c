"""Batch-norm bookkeeping for forwards that must not shape the statistics used at test time."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["running_stats_frozen"]


@contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, the batch norms of ``module`` leave their running statistics alone.

    In training mode they still normalise with the batch's own mean and variance (the gradient is
    the usual training-mode one), but ``running_mean``, ``running_var`` and ``num_batches_tracked``
    are neither read nor updated; in eval mode nothing changes (the running statistics are read as
    always). Use it for auxiliary forwards of inputs unlike the test images (SMEC's half faces), so
    that test time normalises with statistics of whole images only. Works for ``SyncBatchNorm`` too.

    Examples
    --------
    >>> import torch
    >>> bn = nn.BatchNorm1d(2)
    >>> with running_stats_frozen(bn):
    ...     _ = bn(torch.randn(8, 2) + 5.0)
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0], 0)
    """
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    for norm in norms:
        # _BatchNorm.forward neither passes the buffers nor counts the batch when this is False
        norm.track_running_stats = False
    try:
        yield module
    finally:
        for norm in norms:
            norm.track_running_stats = True
