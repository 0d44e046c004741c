"""Issue 17, a consistent command line: help on every flag, --help without torch, python -m noisyfer,
list NAME, train --out / --print-config, shipped configs by name, declared dependencies used."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from noisyfer.cli.main import build_parser, main
from noisyfer.config import SECTIONS, find_config, shipped_configs
from noisyfer.errors import UserError
from noisyfer.registry import METHODS

REPO = Path(__file__).resolve().parent.parent


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_flag_of_every_command_has_help_text():
    missing = []
    for name, sub in _subcommands(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_list_of_a_section_and_parser_errors_do_not_import_torch():
    code = """
import sys
from noisyfer.cli.main import main
for argv in (["--help"], ["list", "train"], ["nosuchcommand"]):
    main(argv)
for argv in (["train", "--help"], ["eval", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "matplotlib", "sklearn") if m in sys.modules)
print("HEAVY", heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "configuration (key=value" in out  # train --help printed its sections


def test_python_dash_m_noisyfer_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "noisyfer", "list", "train"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "train.log_every" in proc.stdout and "TensorBoard" in proc.stdout


def test_train_help_lists_every_section_and_where_keys_are_documented(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for section, cls in SECTIONS.items():
        line = next(line for line in out.splitlines() if line.strip().startswith(section + " "))
        assert all(f.name in line for f in dataclasses.fields(cls)), line
    assert "noisyfer list SECTION" in out and "noisyfer list METHOD" in out


def test_list_method_prints_each_option_with_type_default_and_doc(capsys):
    for entry in METHODS:
        assert main(["list", entry.name]) == 0
        out = capsys.readouterr().out
        for field in dataclasses.fields(entry.options) if entry.options else ():
            assert re.search(rf"^  method\.{field.name} +\S.*, default ", out, re.M), (entry.name, field.name)
    assert main(["list", "scn"]) == 0
    out = capsys.readouterr().out
    assert "method.margin1" in out and "a number, default 0.15" in out
    assert "Rank-regularization margin" in out          # the docstring's description
    assert "paper 000" not in out and "Enhancing FER under data uncertainty" in out  # papers named by title


def test_list_options_flag_and_unknown_name(capsys):
    assert main(["list", "--options"]) == 0
    assert "method.relabel_epoch" in capsys.readouterr().out
    assert main(["list", "scm"]) == 2
    assert "did you mean 'scn'" in capsys.readouterr().err


def test_print_config_resolves_without_running_and_out_flag_sets_out(tmp_path, capsys):
    out_dir = tmp_path / "elsewhere"
    assert main(["train", "ce_sim", "train.epochs=3", "--out", str(out_dir), "--print-config"]) == 0
    tree = yaml.safe_load(capsys.readouterr().out)
    assert tree["out"] == str(out_dir) and tree["train"]["epochs"] == 3 and tree["method"]["name"] == "ce"
    assert tree["data"]["num_train"] == 6000  # from the shipped ce_sim.yaml
    assert not out_dir.exists()
    assert main(["train", "ce_sim", "out=a", "--out", "b", "--print-config"]) == 2
    assert "once" in capsys.readouterr().err


def test_shipped_configs_are_the_configs_folder_and_found_by_name():
    assert set(shipped_configs()) == {p.stem for p in (REPO / "configs").glob("*.yaml")}
    assert find_config("ce_sim").read_text() == (REPO / "configs" / "ce_sim.yaml").read_text()
    assert find_config("ce_sim.yaml").name == "ce_sim.yaml"
    with pytest.raises(UserError, match="did you mean 'ce_sim'"):
        find_config("ce_sin")


def test_the_built_wheel_ships_the_configs_and_train_finds_them_outside_the_checkout(tmp_path):
    """Build a wheel from a copy of the project, install it into a folder, and resolve ``ce_sim`` from another
    working directory with only that folder on the path."""
    import shutil
    import zipfile

    source = tmp_path / "src_copy"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "configs", source / "configs", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(wheels.glob("noisyfer-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for path in (REPO / "configs").rglob("*.yaml"):
        assert f"noisyfer/configs/{path.relative_to(REPO / 'configs').as_posix()}" in names
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import noisyfer.cli.main as m, noisyfer; print(noisyfer.__file__); "
            "raise SystemExit(m.main(['train', 'ce_sim', '--print-config']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=elsewhere,
                          env={**os.environ, "PYTHONPATH": str(target)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith(str(target))
    assert yaml.safe_load(proc.stdout.split("\n", 1)[1])["data"]["num_train"] == 6000


def test_every_declared_dependency_is_imported():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    modules = {"pillow": "PIL", "pyyaml": "yaml", "scikit-learn": "sklearn", "tensorboard": "torch.utils.tensorboard",
               "opencv-python-headless": "cv2"}
    source = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.py"))
    for dep in deps:
        name = re.split(r"[<>=!~ ]", dep, maxsplit=1)[0].lower()
        module = modules.get(name, name)
        assert re.search(rf"^\s*(import|from) {re.escape(module)}\b", source, re.M), f"{name} is declared, never imported"
