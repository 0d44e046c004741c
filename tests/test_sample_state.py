from __future__ import annotations

import pytest
import torch

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
