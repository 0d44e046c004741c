from __future__ import annotations

import pytest
import yaml

import noisyfer  # noqa: F401  (registers components)
from noisyfer.config import coerce, config_from_args, parse_override, resolve_config
from noisyfer.errors import UserError


def test_defaults_and_shorthand():
    cfg = config_from_args(None, ["method=ce", "data=synthetic", "train.lr=0.01", "noise.kind=symmetric",
                                  "noise.rate=0.2", "data.num_train=123"])
    assert cfg.method == "ce" and cfg.data.name == "synthetic"
    assert cfg.train.lr == 0.01 and isinstance(cfg.train.lr, float)
    assert cfg.noise.rate == 0.2 and cfg.noise.kind == "symmetric"
    assert cfg.data_options.num_train == 123
    assert cfg.train.epochs == 40  # default untouched


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"method": {"name": "ce", "label_smoothing": 0.1},
                                    "train": {"epochs": 7, "milestones": [3, 5]}}))
    cfg = config_from_args(str(path), ["train.epochs=9"])
    assert cfg.train.epochs == 9 and cfg.train.milestones == [3, 5]
    assert cfg.method_options.label_smoothing == 0.1


def test_round_trip_through_yaml():
    cfg = config_from_args(None, ["method.label_smoothing=0.2", "augment.erasing=0.1", "model.options={width: 8}"])
    again = resolve_config(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize("items, message", [
    (["train.epochz=3"], "unknown key 'train.epochz' (did you mean 'train.epochs'?)"),
    (["method=nope"], "unknown method 'nope'"),
    (["data=nope"], "unknown dataset 'nope'"),
    (["train.epochs=abc"], "train.epochs: expected an integer, got 'abc'"),
    (["train.epochs=2.5"], "train.epochs: expected an integer"),
    (["noise.rate=1.0"], "noise.rate: expected a rate in [0, 1)"),
    (["noise.rate=-0.1"], "noise.rate: expected a rate in [0, 1)"),
    (["train.optimizer=lbfgs"], "train.optimizer: expected one of adam, adamw, sgd"),
    (["method.label_smoothing=1.5"], "method: label_smoothing must be in [0, 1)"),
    (["method.nope=1"], "unknown key 'method.nope'"),
    (["data.num_trian=5"], "did you mean 'data.num_train'"),
    (["bogus=1"], "unknown key 'bogus'"),
    (["train.deterministic=maybe"], "train.deterministic: expected true or false"),
    (["novalue"], "expected key=value"),
])
def test_user_errors_name_the_key(items, message):
    with pytest.raises(UserError) as info:
        config_from_args(None, items)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file():
    with pytest.raises(UserError, match="config file not found: /no/such.yaml"):
        config_from_args("/no/such.yaml", [])


def test_parse_override_values():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a=0.5") == ("a", 0.5)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=null") == ("a", None)
    assert parse_override("a=x=y") == ("a", "x=y")


def test_coerce_rules():
    assert coerce(3, float, "k") == 3.0
    assert coerce(4.0, int, "k") == 4
    assert coerce(None, str | None, "k") is None
    with pytest.raises(UserError):
        coerce(True, int, "k")
    with pytest.raises(UserError):
        coerce("1", int, "k")


def test_the_simulators_ranges_are_checked_when_the_config_is_resolved():
    # before any run or sweep point starts (a sweep's --dry-run lists it), not when the data is generated
    with pytest.raises(UserError, match=r"data\.image_size: must be in 32\.\.224, got 24"):
        config_from_args(None, ["data=synthetic", "data.image_size=24"])
    with pytest.raises(UserError, match=r"data\.ambiguity"):
        config_from_args(None, ["data=synthetic", "data.ambiguity=1.5"])
    assert config_from_args(None, ["data=synthetic", "data.image_size=32"]).data.image_size == 32
