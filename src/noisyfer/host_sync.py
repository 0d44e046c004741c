"""Where a training step would make the host wait for the accelerator, found on the CPU.

On CUDA, reading a value of a device tensor (``.item()``, ``int(t)``, ``float(t)``, ``if t.any():``)
or running an operation whose output size depends on the values (boolean-mask indexing,
``nonzero``, ``unique``, ``masked_select``, ``bincount``) blocks the host until the device has
finished all the work queued before it: the step stalls and the device idles while the host queues
the next kernels. On the CPU these cost nothing, so checks that read values (index bounds) run there
only, behind :func:`host_reads_are_free`.

:class:`HostSyncRecorder` finds such places without a GPU: a ``TorchDispatchMode`` that records every
one of these operations on tensors that would live on the device, while the code runs on the CPU
and takes the accelerator's path (:func:`host_reads_are_free` answers ``False`` inside it). Tensors
that stay on the host in a real run (``Batch.host_labels``, the loader's CPU indices) are marked with
:meth:`HostSyncRecorder.mark_host`; whatever is computed from host tensors only is host too.
``benchmarks/check_methods_device.py`` counts the real synchronisations on a GPU
(``torch.cuda.set_sync_debug_mode``); the test suite runs this recorder over every registered method.
"""

from __future__ import annotations

import traceback
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["HostSyncRecorder", "SYNC_OPS", "host_reads_are_free"]

_aten = torch.ops.aten

#: Operations that synchronise with the host on CUDA whatever their arguments: a value read back, or
#: an output whose size depends on the values.
SYNC_OPS = frozenset({
    _aten._local_scalar_dense.default, _aten.is_nonzero.default, _aten.equal.default,
    _aten.nonzero.default, _aten.masked_select.default, _aten.bincount.default,
    _aten._unique2.default, _aten.unique_dim.default, _aten.unique_consecutive.default,
    _aten.repeat_interleave.Tensor, _aten.repeat_interleave.self_Tensor,
})

#: Indexing operations that synchronise when one of their indices is a boolean mask.
_MASK_INDEXING = frozenset({_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default})

_simulating = 0
_PACKAGE = str(Path(__file__).resolve().parent)
_TORCH = str(Path(torch.__file__).resolve().parent)


def host_reads_are_free(tensor: Tensor) -> bool:
    """Whether reading values of ``tensor`` back to Python costs nothing: it lives on the CPU (and no
    :class:`HostSyncRecorder` is simulating an accelerator)."""
    return tensor.device.type == "cpu" and not _simulating


def _caller() -> str:
    """``file:line function`` of the innermost frame outside torch and this module (paths inside
    noisyfer relative to the package's folder)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if frame.filename.startswith(_TORCH) or path.name == "host_sync.py" or "contextlib" in path.name:
            continue
        shown = path.relative_to(Path(_PACKAGE).parent) if frame.filename.startswith(_PACKAGE) else path.name
        return f"{shown}:{frame.lineno} {frame.name}"
    return "unknown"


#: Tensor methods that copy to the host: a wait, unless the tensor is already there.
_TO_HOST = frozenset({Tensor.cpu, Tensor.numpy, Tensor.tolist})

#: Functions whose value checks run on the CPU only: on CUDA, ``one_hot`` with ``num_classes`` given
#: leaves the bounds to a device-side assert instead of reading the labels back.
_CHECKS_ON_CPU_ONLY = frozenset({F.one_hot})


class HostSyncRecorder:
    """Record the operations that would make the host wait for an accelerator (a context manager).

    Which tensors live on the host in a real run: those marked with :meth:`mark_host`, those made by a
    factory function called without ``device=`` (``torch.randint(...)``: the default device is the CPU),
    those copied there (``.cpu()``, ``.tolist()``, ``.numpy()``: each a wait when its tensor is not on
    the host), and whatever is computed from host tensors only. Every other tensor would be on the
    device.

    Examples
    --------
    >>> x = torch.tensor([0.5, -1.0, 2.0], device="cpu")
    >>> with HostSyncRecorder() as recorder:
    ...     kept = x[x > 0]          # boolean mask: the output size depends on the values
    ...     total = x.sum()          # stays on the device: no wait
    ...     scalar = float(total)    # read back: a wait
    ...     order = torch.randperm(3).tolist()   # drawn on the host: no wait
    >>> sorted(recorder.counts())
    ['aten._local_scalar_dense.default', 'aten.index.Tensor']
    """

    def __init__(self):
        # Held by id (a tensor's == compares values); kept alive so that an id is never reused meanwhile.
        self._host: dict[int, Tensor] = {}
        self.events: list[tuple[str, str]] = []
        self.quiet = 0
        self._modes = (_FunctionLevel(self), _DispatchLevel(self))

    def mark_host(self, *tensors: Tensor | None) -> None:
        """Tensors that live on the host in a real run: operations on them alone are not recorded."""
        for tensor in tensors:
            if tensor is not None:
                self._host[id(tensor)] = tensor

    def is_host(self, tensors: list[Tensor]) -> bool:
        return bool(tensors) and all(id(t) in self._host for t in tensors)

    def record(self, name: str) -> None:
        self.events.append((name, _caller()))

    def counts(self) -> Counter:
        """Recorded operations by name."""
        return Counter(name for name, _ in self.events)

    def report(self) -> str:
        """One line per place (``file:line function``) and operation, with its count."""
        places = Counter(self.events)
        return "\n".join(f"{count:5d} x {name} at {where}" for (name, where), count in places.most_common())

    def __enter__(self) -> HostSyncRecorder:
        global _simulating
        _simulating += 1
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        global _simulating
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        _simulating -= 1


def _tensors(tree) -> list[Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, Tensor)]


class _FunctionLevel(TorchFunctionMode):
    """Python-level calls: where tensors are made (with or without a device) and copied to the host."""

    def __init__(self, recorder: HostSyncRecorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = _tensors((args, kwargs))
        quiet = func in _CHECKS_ON_CPU_ONLY and (args[1:] or [kwargs.get("num_classes", -1)])[0] >= 0
        self.recorder.quiet += quiet
        try:
            out = func(*args, **kwargs)
        finally:
            self.recorder.quiet -= quiet
        if func in _TO_HOST:
            if not self.recorder.is_host(inputs):
                self.recorder.record(f"Tensor.{func.__name__}")
            self.recorder.mark_host(*_tensors(out))
        elif not inputs and kwargs.get("device") is None:
            self.recorder.mark_host(*_tensors(out))
        return out


class _DispatchLevel(TorchDispatchMode):
    """Operator level: value reads and data-dependent output sizes on device tensors."""

    def __init__(self, recorder: HostSyncRecorder):
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        on_host = self.recorder.is_host(_tensors((args, kwargs)))
        if not on_host and not self.recorder.quiet and _synchronises(func, args):
            self.recorder.record(str(func))
        out = func(*args, **kwargs)
        if on_host:
            self.recorder.mark_host(*_tensors(out))
        return out


def _synchronises(func, args) -> bool:
    if func in SYNC_OPS:
        return True
    if func in _MASK_INDEXING and len(args) > 1:
        return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in args[1] or ())
    return False
