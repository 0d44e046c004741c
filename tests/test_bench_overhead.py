"""``benchmarks/bench_overhead.py``: the FLOP ratios it divides by, its verdicts and its round order."""

from __future__ import annotations

import argparse

import pytest

from .conftest import benchmark_script


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_overhead") as module:
        yield module


def test_every_method_leads_one_round_and_each_round_has_every_method(bench):
    names = [f"m{i}" for i in range(6)]
    orders = [bench.round_order(names, round_index=r, rounds=3) for r in range(3)]
    assert all(sorted(order) == names for order in orders)
    assert [order[0] for order in orders] == ["m0", "m2", "m4"]
    assert bench.round_order(["ce", "elr"], round_index=5, rounds=3) == ["elr", "ce"]


def test_verdicts_bound_the_ratio_or_the_ratio_per_flop(bench):
    assert bench.verdict("elr", 1.09, 1.0) == ("<= 1.10", True)
    assert bench.verdict("elr", 1.11, 1.0)[1] is False
    label, ok = bench.verdict("eac", 2.15, 2.0)  # not listed: 1.1 x its FLOP ratio
    assert label == "<= 1.1 x FLOP = 2.20" and ok
    assert bench.verdict("eac", 2.25, 2.0)[1] is False


def test_flop_ratio_counts_two_views_twice(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("NOISYFER_CACHE", str(tmp_path / "cache"))
    from noisyfer.engine.rundir import RunDirectory
    from noisyfer.engine.trainer import Trainer

    args = argparse.Namespace(device="cpu", quick=True, batch_size=16, epochs=1, amp="off")
    setting = {"backbone": "resnet_tiny", "image_size": 32, "num_train": 64}
    flops = {}
    for name in ("ce", "elr", "eac"):
        trainer = Trainer(bench._config(name, setting, args, str(tmp_path)), RunDirectory.create(tmp_path, name),
                          resuming=False)
        flops[name] = bench.count_step_flops(trainer, epoch=2)
    assert flops["ce"] > 0
    assert flops["elr"] / flops["ce"] == pytest.approx(1.0, abs=0.01)   # one view, the same network
    assert flops["eac"] / flops["ce"] == pytest.approx(2.0, abs=0.05)   # the face and its mirror image


def test_cpu_clock_needs_the_cpu_device(bench):
    with pytest.raises(SystemExit):
        bench.main(["--clock", "cpu", "--device", "cuda", "--quick"])
