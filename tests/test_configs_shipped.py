"""Every YAML recipe in configs/ resolves against the registries (keys, types, ranges)."""

from __future__ import annotations

from pathlib import Path

import pytest

import noisyfer  # noqa: F401
from noisyfer.cli.commands import DEMO_OVERRIDES
from noisyfer.config import config_from_args

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_resolves(path):
    cfg = config_from_args(str(path), [])
    assert path.name.startswith(cfg.method)


def test_demo_is_the_ce_sim_recipe():
    demo = config_from_args(None, DEMO_OVERRIDES).to_dict()
    shipped = config_from_args(str(Path(__file__).parent.parent / "configs" / "ce_sim.yaml"), []).to_dict()
    assert demo == shipped
