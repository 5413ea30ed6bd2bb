# Two commands do everything on a fresh machine:
#   make quickstart   set up .venv and run the whole pipeline on a tiny backbone (CPU, no download)
#   make test         set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sfm-installed
# Offline by default: nothing in the quickstart or the tests may reach the Hub.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# neuraloperator imports wandb; sfm never logs there unless asked (sfm.models sets the same default).
export WANDB_MODE ?= disabled
# DeepSpeed JIT-compiles a CPU communication op on first use; keep the build where later runs find it.
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/$(VENV)/torch_extensions

.PHONY: setup quickstart test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/sfm quickstart $(ARGS)

# The full suite (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# Seconds, not minutes: nothing that trains, launches processes or generates with a model.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not distributed and not trains" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
