"""Data-parallel training on ``torch.distributed``: what one rank does differently from one process.

Launched by ``torchrun`` (or ``noisyfer train --nproc N``), every rank runs the whole training loop
on the whole global batch (``train.batch_size``) with the same seed, so every random draw
(augmentation, dropout) and every batch statistic of a method (rankings, class-adaptive
thresholds, per-class sub-batches, centre sums, small-loss selection) is the single-process one.
Only the backbones' forward is split: :func:`shard_backbones` makes rank ``r`` compute rows
``r``-th share of any batch it is given (contiguous, the shares differ by at most one row) and
gathers the rows of all ranks, in rank order, so the backbone's output is the whole batch's on
every rank. Its backward hands each rank the gradient of its own rows; :func:`average_gradients`
then all-reduces the gradients, so every optimizer (a method's second one too) applies the
single-process update on every rank. Per-sample state and memory banks stay identical on every
rank without communication because every rank computes the same updates from the same numbers.

Batch-norm layers inside a backbone see only the rank's rows (as under DDP) unless ``train.sync_bn``
replaces them by :class:`SyncedBatchNorm2d`, whose statistics are those of the whole batch; their
running statistics are taken from rank 0 after each epoch (:func:`broadcast_backbone_buffers`).

In a single process every function here is a no-op (or returns its input).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

__all__ = ["average_gradients", "broadcast_backbone_buffers", "from_main", "is_main", "launched_ranks",
           "local_device", "process_group", "rank", "shard_backbones", "share_bounds", "SyncedBatchNorm2d",
           "world_size"]

#: True while a rank runs the backbone on its own rows (nested backbone calls then run as they are).
_IN_SHARD: contextvars.ContextVar[bool] = contextvars.ContextVar("noisyfer_in_shard", default=False)
#: Backbone methods that take a batch first and are split over the ranks.
SHARDED_METHODS = ("forward", "forward_until")


def _initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Ranks of the process group (1 when none is initialised)."""
    import torch.distributed as dist

    return dist.get_world_size() if _initialized() else 1


def rank() -> int:
    """This process's rank (0 when none is initialised)."""
    import torch.distributed as dist

    return dist.get_rank() if _initialized() else 0


def launched_ranks() -> int:
    """``WORLD_SIZE`` set by the launcher (``torchrun``), 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main() -> bool:
    """Rank 0 (or a single process), the one that writes the run directory and prints."""
    if _initialized():
        return rank() == 0
    return int(os.environ.get("RANK", "0") or 0) == 0


def local_device(device: torch.device) -> torch.device:
    """``device`` for this rank: on CUDA the GPU numbered ``LOCAL_RANK`` (made current)."""
    if device.type != "cuda" or launched_ranks() <= 1:
        return device
    index = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


@contextlib.contextmanager
def process_group() -> Iterator[None]:
    """Join the launcher's process group for the duration of a run: gloo for CPU tensors, and NCCL
    for CUDA tensors when CUDA is available (one GPU per ``LOCAL_RANK``).

    Does nothing in a single process, or when the caller has already initialised a group (which is
    then left to it).
    """
    import torch.distributed as dist

    if launched_ranks() <= 1 or _initialized():
        yield
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def from_main(make: Callable[[], Any]) -> Any:
    """``make()`` on rank 0, its result (or the exception it raised) sent to every rank."""
    if world_size() <= 1:
        return make()
    import torch.distributed as dist

    box: list = [None]
    if is_main():
        try:
            box[0] = ("ok", make())
        except Exception as exc:  # noqa: BLE001 - raised on every rank below
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


# -- the sharded backbone forward -----------------------------------------------------------------
def share_bounds(rows: int, world: int, rank_: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of rank ``rank_``: contiguous shares, the first ``rows % world`` one longer."""
    base, extra = divmod(rows, world)
    start = rank_ * base + min(rank_, extra)
    return start, start + base + (1 if rank_ < extra else 0)


class _GatherRows(torch.autograd.Function):
    """All ranks' rows in rank order; backward: the gradient of this rank's rows.

    Every rank computes the same loss from the gathered rows, so the gradient of the gathered
    tensor is the same on every rank; each rank keeps its rows' part, times the world size because
    :func:`average_gradients` divides by it again (the backbone's gradient is a sum over the ranks).
    """

    @staticmethod
    def forward(ctx, local: Tensor, rows: int) -> Tensor:
        import torch.distributed as dist

        world, me = world_size(), rank()
        bounds = [share_bounds(rows, world, r) for r in range(world)]
        longest = max(stop - start for start, stop in bounds)
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.bounds, ctx.world = bounds[me], world
        return torch.cat([part[: stop - start] for part, (start, stop) in zip(parts, bounds)])

    @staticmethod
    def backward(ctx, grad: Tensor):
        start, stop = ctx.bounds
        return grad[start:stop] * ctx.world, None


def _gather_output(out: Any, rows: int) -> Any:
    if isinstance(out, Tensor):
        return _GatherRows.apply(out, rows)
    if isinstance(out, tuple):  # BackboneOutput (a NamedTuple), plain tuples
        fields = [_gather_output(v, rows) if v is not None else None for v in out]
        return type(out)(*fields) if hasattr(out, "_fields") else tuple(fields)
    raise TypeError(f"cannot gather a backbone output of type {type(out).__name__} over ranks")


def _sharded(call: Callable) -> Callable:
    @functools.wraps(call)
    def run(x: Tensor, *args, **kwargs):
        world = world_size()
        rows = int(x.shape[0])
        # nested calls (forward -> forward_until) and batches too small to give every rank 2 rows
        # (batch norm needs 2) run whole on every rank, which is the single-process computation
        if world <= 1 or _IN_SHARD.get() or rows < 2 * world:
            return call(x, *args, **kwargs)
        start, stop = share_bounds(rows, world, rank())
        token = _IN_SHARD.set(True)
        try:
            out = call(x[start:stop], *args, **kwargs)
        finally:
            _IN_SHARD.reset(token)
        return _gather_output(out, rows)

    run.__noisyfer_sharded__ = True
    return run


def backbones(method: nn.Module) -> list[nn.Module]:
    """The networks made by :func:`noisyfer.models.create_backbone` inside ``method`` (its backbone,
    Co-teaching's peer)."""
    return [m for m in method.modules() if getattr(m, "spec", None) is not None and hasattr(m, "forward_until")]


def shard_backbones(method: nn.Module, *, sync_bn: bool = False) -> None:
    """Split the forward of ``method``'s backbones over the ranks (see the module docstring); with
    ``sync_bn`` their batch-norm layers use the whole batch's statistics. No-op in one process."""
    if world_size() <= 1:
        return
    for net in backbones(method):
        for name in SHARDED_METHODS:
            call = getattr(net, name, None)
            if call is not None and not getattr(call, "__noisyfer_sharded__", False):
                setattr(net, name, _sharded(call))  # an instance attribute: state dict keys unchanged
        if sync_bn:
            for layer in net.modules():
                if type(layer) is nn.BatchNorm2d:
                    layer.__class__ = SyncedBatchNorm2d  # same parameters and buffers, same keys
    _broadcast(list(method.parameters()) + list(method.buffers()))


class _SumOverRanks(torch.autograd.Function):
    """Sum over the ranks; backward: the sum of the ranks' gradients (each rank's loss uses the sum)."""

    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:
        import torch.distributed as dist

        total = local.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        import torch.distributed as dist

        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the whole batch split over the ranks.

    torch's ``nn.SyncBatchNorm`` refuses CPU tensors; this one all-reduces (differentiably, on any
    backend) the sums of the ranks' rows, two passes as ``batch_norm`` does (mean, then the squared
    deviations). Outside a sharded backbone call (eval, a single process) it is ``BatchNorm2d``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _IN_SHARD.get() and world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        local = x.float()
        import torch.distributed as dist

        count = torch.tensor([float(local.numel() // local.shape[1])], device=x.device)
        dist.all_reduce(count)
        mean = _SumOverRanks.apply(local.sum(dims)) / count
        centred = local - mean[None, :, None, None]
        var = _SumOverRanks.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                n = float(count)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (n / max(n - 1, 1)), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out.to(x.dtype)


# -- keeping the replicas equal ---------------------------------------------------------------------
def _broadcast(tensors: Iterable[Tensor]) -> None:
    import torch.distributed as dist

    for tensor in tensors:
        dist.broadcast(tensor.data, src=0)


def broadcast_backbone_buffers(method: nn.Module) -> None:
    """Rank 0's batch-norm running statistics to every rank (they differ per rank without sync_bn)."""
    if world_size() <= 1:
        return
    _broadcast([b for net in backbones(method) for b in net.buffers()])


def average_gradients(params: Iterable[Tensor]) -> None:
    """Average the parameters' gradients over the ranks, one all-reduce per dtype. No-op in one process."""
    world = world_size()
    if world <= 1:
        return
    import torch.distributed as dist

    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
