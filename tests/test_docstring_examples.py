"""The docstring examples of the public modules run (doctest), so that the documentation cannot rot."""

from __future__ import annotations

import doctest
import importlib

import pytest

from noisyfer.registry import METHODS

MODULES = [
    "noisyfer.methods.base",  # the complete example method of "Writing a method"
    "noisyfer.methods.elr",
    "noisyfer.methods.gce",
    "noisyfer.methods.sample_state",
    "noisyfer.models",
    "noisyfer.models.backbones",
    "noisyfer.models.resnet",
    "noisyfer.sweep.scheduler_options",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, monkeypatch):
    # an example may register a method (base.py's ema_ce): the registry is restored afterwards
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
    assert "ema_ce" not in METHODS or name == "noisyfer.methods.base"
