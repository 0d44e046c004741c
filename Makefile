# noisyfer: `make demo` and `make test` each set up .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pinned: an unpinned torch pulls the CUDA build and gigabytes of packages. On a machine with a
# local CPU wheel (pip's find-links) this installs it; elsewhere pip fetches 2.13.0 from PyPI.
TORCH_SPEC ?= torch==2.13.0
# MTCNN weights: plain state dicts inside this MIT wheel. Installed --no-deps: its pins (old torch,
# torchvision) cannot import here, and noisyfer only reads its data files, never imports the package.
FACENET_SPEC ?= facenet-pytorch==2.6.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,export]"
	$(BIN)/python -m pip install --quiet --no-deps "$(FACENET_SPEC)"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/noisyfer demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_backbones.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
