"""The input pipeline after the readers: prefetched batches are exactly the plain ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from noisyfer.engine.loader import TensorLoader, prefetched
from tests.conftest import make_tiny_split

CPU = torch.device("cpu")


def _epoch(loader: TensorLoader, epoch: int) -> list:
    return [(b.indices.tolist(), b.images.clone(), b.labels.tolist()) for b in loader.train_batches(seed=3, epoch=epoch)]


def test_prefetched_batches_are_the_plain_batches():
    data = make_tiny_split(100)
    plain = TensorLoader(data, batch_size=16, device=CPU, prefetch=0)
    ahead = TensorLoader(data, batch_size=16, device=CPU, prefetch=2)
    for epoch in (1, 2):
        a, b = _epoch(plain, epoch), _epoch(ahead, epoch)
        assert len(a) == len(b) == 6
        for (ia, xa, ya), (ib, xb, yb) in zip(a, b):
            assert ia == ib and ya == yb and torch.equal(xa, xb)
    expected = torch.from_numpy(data.images[a[0][0]]).permute(0, 3, 1, 2)  # uint8, as stored
    assert torch.equal(a[0][1], expected)
    assert [len(b) for b in ahead.eval_batches()] == [16] * 6 + [4]


def test_prefetch_raises_errors_in_order_and_stops_when_abandoned():
    def make(i):
        if i == 3:
            raise ValueError("item 3 is bad")
        return i * 10

    out = []
    with pytest.raises(ValueError, match="item 3 is bad"):
        for value in prefetched(make, range(6), depth=2):
            out.append(value)
    assert out == [0, 10, 20]
    before = threading.active_count()
    made = []

    def record(i):
        made.append(i)
        return i

    iterator = prefetched(record, range(1000), depth=1)
    assert next(iterator) == 0
    iterator.close()  # the consumer stops early: the thread ends after at most a couple of items
    assert threading.active_count() == before and len(made) <= 3
    assert list(prefetched(record, [], depth=1)) == []
    assert list(prefetched(lambda i: i + 1, np.arange(4), depth=3)) == [1, 2, 3, 4]
