"""Batches straight from decoded tensors: no per-sample Python, no worker processes.

The whole split is held as one uint8 tensor (N, 3, H, W), on the training device when it fits (a
GPU) or in host memory. A batch is one index gather (and a copy to the device when the split stays
on the host); the images stay uint8 until the method's augmentation views cast them. The order of
an epoch comes from a generator seeded by ``(seed, epoch)``, so any epoch can be replayed exactly
after a resume without replaying the ones before it.

On CUDA the next batch is assembled in a background thread while the current one is used
(``prefetch``): torch releases the GIL in its kernels, so the gather and the host-to-device copy
overlap the model's step. On the CPU the default is no thread: a batch is one uint8 gather, and a
second thread's kernels would compete with the step's intra-op threads for the same cores (measured
with ``benchmarks/bench_input_pipeline.py``: augmented batches 15.3k/s without, 11.9k/s with it on 2
cores). A batch depends only on its indices, never on a random generator, so prefetching changes no
number.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..data.format import FERData
from ..methods.base import Batch

T = TypeVar("T")


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Generator for epoch ``epoch`` of a run seeded ``seed`` (independent streams per epoch)."""
    stream = np.random.SeedSequence([int(seed), int(epoch), 0x5A3D]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(stream) & ((1 << 63) - 1))


def class_balanced_weights(labels: np.ndarray | Tensor, num_classes: int) -> Tensor:
    """Per-sample weights 1 / n_class, so each class is drawn equally often (absent classes get 0)."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    counts = torch.bincount(labels, minlength=num_classes).double()
    per_class = torch.where(counts > 0, 1.0 / counts.clamp_min(1), torch.zeros_like(counts))
    return per_class[labels]


def epoch_order(*, num_samples: int, seed: int, epoch: int, sampler: str, labels: np.ndarray | None = None,
                num_classes: int | None = None) -> Tensor:
    """Sample indices of one epoch: ``random`` (a permutation) or ``balanced`` (class-balanced, with
    replacement, as many draws as samples)."""
    gen = epoch_generator(seed, epoch)
    if sampler == "random":
        return torch.randperm(num_samples, generator=gen)
    if sampler == "balanced":
        if labels is None or num_classes is None:
            raise ValueError("the balanced sampler needs labels and num_classes")
        weights = class_balanced_weights(labels, num_classes)
        return torch.multinomial(weights, num_samples, replacement=True, generator=gen)
    raise ValueError(f"unknown sampler '{sampler}'")


class TensorLoader:
    """Iterates batches of a split held as tensors.

    Parameters
    ----------
    data
        The split.
    labels
        Labels served in ``Batch.labels`` (the training labels after noise), default ``data.labels``.
    columns
        Names of ``data.columns`` to serve in ``Batch.columns`` (numeric columns only).
    device
        Where batches go. On CUDA the image tensor is moved there once, if it takes at most
        ``device_fraction`` of the free memory.
    prefetch
        Batches assembled ahead in a background thread (0: none, each batch built when asked for);
        default 1 on CUDA, 0 on the CPU (see the module docstring).
    subset
        Dataset indices that training epochs draw from (the other folds of a cross-validation run);
        default all. ``batch`` and ``eval_batches`` still reach every sample by its dataset index.
    """

    def __init__(self, data: FERData, *, batch_size: int, device: torch.device, labels: np.ndarray | None = None,
                 columns: tuple[str, ...] = (), device_fraction: float = 0.25, prefetch: int | None = None,
                 subset: np.ndarray | None = None):
        self.batch_size = int(batch_size)
        self.subset = None if subset is None else torch.from_numpy(np.asarray(subset, dtype=np.int64).copy())
        self.prefetch = int(prefetch) if prefetch is not None else int(device.type == "cuda")
        self.device = device
        self.num_samples = len(data)
        # Read once into RAM as uint8 NCHW (the stored layout is NHWC): batches are then contiguous
        # slices, and crop and flip move bytes, not floats (the Augmenter casts once, at the end).
        images = torch.from_numpy(np.ascontiguousarray(np.asarray(data.images, dtype=np.uint8).transpose(0, 3, 1, 2)))
        labels_array = data.labels if labels is None else np.asarray(labels)
        self.labels_np = labels_array.astype(np.int64)
        self.num_classes = data.num_classes
        self.labels = torch.from_numpy(self.labels_np.copy())
        self.host_labels = self.labels
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise KeyError(f"dataset has no column(s) {missing}; it has {sorted(data.columns)}")
        self.columns: Mapping[str, Tensor] = {c: torch.from_numpy(np.asarray(data.columns[c])) for c in columns}
        if device.type == "cuda" and self._fits_on_device(images, device, device_fraction):
            images = images.to(device)
            self.labels = self.labels.to(device)
            self.columns = {k: v.to(device) for k, v in self.columns.items()}
        elif device.type == "cuda":
            images = images.pin_memory()
        self.images = images

    @staticmethod
    def _fits_on_device(images: Tensor, device: torch.device, fraction: float) -> bool:
        free, _ = torch.cuda.mem_get_info(device)
        return images.numel() * images.element_size() <= fraction * free

    def batch(self, indices: Tensor) -> Batch:
        """The batch of dataset ``indices`` (int64, CPU), images as stored (uint8) on the device."""
        on_device = self.images.device == self.device
        idx = indices.to(self.device) if on_device else indices
        images = self.images.index_select(0, idx).to(self.device, non_blocking=True)
        labels = self.labels.index_select(0, idx).to(self.device, non_blocking=True)
        columns = {k: v.index_select(0, idx).to(self.device, non_blocking=True) for k, v in self.columns.items()}
        return Batch(images=images, labels=labels, indices=indices.to(self.device, non_blocking=True), columns=columns,
                     host_labels=self.host_labels.index_select(0, indices.cpu()))

    def train_batches(self, *, seed: int, epoch: int, sampler: str = "random", drop_last: bool = True) -> Iterator[Batch]:
        labels = self.labels_np if self.subset is None else self.labels_np[self.subset.numpy()]
        order = epoch_order(num_samples=self.num_train_samples, seed=seed, epoch=epoch, sampler=sampler,
                            labels=labels, num_classes=self.num_classes)
        if self.subset is not None:
            order = self.subset[order]
        yield from self._batches(order, drop_last=drop_last)

    def eval_batches(self) -> Iterator[Batch]:
        yield from self._batches(torch.arange(self.num_samples), drop_last=False)

    @property
    def num_train_samples(self) -> int:
        """Samples a training epoch draws from (``subset`` or the whole split)."""
        return self.num_samples if self.subset is None else int(self.subset.numel())

    def num_batches(self, *, drop_last: bool) -> int:
        """Batches of a training epoch."""
        return self._count(self.num_train_samples, drop_last=drop_last)

    def _count(self, samples: int, *, drop_last: bool) -> int:
        if drop_last:
            return samples // self.batch_size
        return -(-samples // self.batch_size)

    def _batches(self, order: Tensor, *, drop_last: bool) -> Iterator[Batch]:
        stop = self._count(int(order.shape[0]), drop_last=drop_last) * self.batch_size
        starts = range(0, min(stop, order.shape[0]), self.batch_size)
        chunks = [order[start:start + self.batch_size] for start in starts]
        if self.prefetch <= 0 or len(chunks) <= 1:
            yield from map(self.batch, chunks)
        else:
            yield from prefetched(self.batch, chunks, depth=self.prefetch, device=self.device)


def prefetched(make: Callable[..., T], items: Iterable, *, depth: int = 1,
               device: torch.device | None = None) -> Iterator[T]:
    """``make(item)`` for each item in order, computed up to ``depth`` items ahead in a thread.

    An exception in ``make`` is raised to the consumer; when the consumer stops early (``break``, an
    exception, garbage collection) the thread stops after the item it is on.
    """
    results: queue.Queue = queue.Queue(maxsize=max(int(depth), 1))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                results.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            if device is not None and device.type == "cuda" and device.index is not None:
                torch.cuda.set_device(device)  # the current device is per thread
            for item in items:
                if stop.is_set() or not put(("item", make(item))):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(("error", exc))

    thread = threading.Thread(target=work, name="noisyfer-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = results.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()
