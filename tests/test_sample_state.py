from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from noisyfer.methods.sample_state import SampleState


def test_update_and_state_dict_round_trip():
    state = SampleState(5)
    state.register("labels", torch.tensor([0, 1, 2, 3, 4]))
    state.register("target", torch.zeros(5, 2))
    state.update("labels", torch.tensor([4, 0]), torch.tensor([1, 3]))
    state.update("target", torch.tensor([2]), torch.tensor([[0.25, 0.75]]))
    assert state["labels"].tolist() == [3, 1, 2, 3, 1]
    assert state["target"][2].tolist() == [0.25, 0.75]
    other = SampleState(5)
    other.register("labels", torch.zeros(5, dtype=torch.long))
    other.register("target", torch.ones(5, 2))
    other.load_state_dict(state.state_dict())
    assert torch.equal(other["labels"], state["labels"]) and torch.equal(other["target"], state["target"])


def test_duplicate_indices_last_occurrence_wins():
    state = SampleState(3)
    state.register("x", torch.zeros(3))
    state.update("x", torch.tensor([1, 2, 1, 1]), torch.tensor([5.0, 6.0, 7.0, 8.0]))
    assert state["x"].tolist() == [0.0, 8.0, 6.0]


def test_errors():
    state = SampleState(3)
    with pytest.raises(ValueError, match="has 2 rows, expected 3"):
        state.register("x", torch.zeros(2))
    state.register("x", torch.zeros(3))
    with pytest.raises(KeyError, match="no per-sample state 'y'"):
        state["y"]
    with pytest.raises(IndexError):
        state.update("x", torch.tensor([3]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="rows must be"):
        state.update("x", torch.tensor([0]), torch.tensor([[1.0, 2.0]]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: dict):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        state = SampleState(6)
        state.register("labels", torch.zeros(6, dtype=torch.long))
        # each rank relabels its own (unequal-sized) sub-batch; all ranks must see all updates
        idx = torch.tensor([0, 1, 2]) if rank == 0 else torch.tensor([5])
        state.update("labels", idx, idx + 10)
        out[rank] = state["labels"].tolist()
    finally:
        dist.destroy_process_group()


def test_distributed_update_is_gathered_on_every_rank():
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
        assert out[0] == out[1] == [10, 11, 12, 0, 0, 15]
