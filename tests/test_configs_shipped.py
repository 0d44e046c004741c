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


@pytest.mark.parametrize("name", noisyfer.METHODS.names())
def test_every_method_ships_its_recipes(name):
    # the shipped sweeps read configs/<method>_sim.yaml for every registered method (`method: all`)
    for kind in ("sim", "paper"):
        path = Path(__file__).parent.parent / "configs" / f"{name}_{kind}.yaml"
        assert path.is_file(), f"method '{name}' has no {path.name}"
        assert config_from_args(str(path), []).method == name


def test_demo_is_the_ce_sim_recipe():
    demo = config_from_args(None, DEMO_OVERRIDES).to_dict()
    shipped = config_from_args(str(Path(__file__).parent.parent / "configs" / "ce_sim.yaml"), []).to_dict()
    assert demo == shipped


SWEEPS = sorted((Path(__file__).parent.parent / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_sweep_file_resolves_every_point(path, tmp_path):
    import yaml

    from noisyfer.sweep.spec import SweepSpec

    spec = SweepSpec.from_mapping(yaml.safe_load(path.read_text()), source=str(path))
    resolved = spec.resolved(runs_dir=tmp_path)  # every point validated as a run configuration
    assert len(resolved) == len(spec.points()) > 0


def test_the_all_methods_sweep_runs_every_registered_method_4_times(tmp_path):
    import yaml

    from noisyfer.sweep.spec import SweepSpec

    path = Path(__file__).parent.parent / "configs" / "sweeps" / "sim_all_methods.yaml"
    resolved = SweepSpec.from_mapping(yaml.safe_load(path.read_text())).resolved(runs_dir=tmp_path)
    methods = [tree["method"]["name"] for _, tree in resolved]
    assert sorted(set(methods)) == sorted(noisyfer.METHODS.names())
    assert all(methods.count(name) == 4 for name in set(methods))  # 2 noise rates x 2 seeds
