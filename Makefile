# cnndsl: the two set-up commands of the README, and a few more.
#   make demo   create .venv, install cnndsl, and run it on specs/lenet5.cnn
#   make test   create .venv, install cnndsl with its test tools, and run the test suite
# Both work on a fresh machine with only Python 3 and pip; Graphviz's `dot` is installed with the
# system package manager when it is missing (root, or sudo, is needed for that step only).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SPEC   ?= specs/lenet5.cnn
OUT    ?= out

.PHONY: demo test test-full dot venv install lint bench zoo-docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip -e keeps the grammar and specs where they are; the stamp re-installs when pyproject changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

dot:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing Graphviz (dot) with the system package manager"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if command -v apt-get >/dev/null 2>&1; then $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; \
	  elif command -v dnf >/dev/null 2>&1; then $$SUDO dnf install -y graphviz; \
	  elif command -v brew >/dev/null 2>&1; then brew install graphviz; \
	  else echo "cannot install Graphviz here: install the 'graphviz' package by hand"; exit 1; fi; }
	@dot -V

demo: install dot
	@mkdir -p $(OUT)
	$(BIN)/cnndsl summary $(SPEC)
	$(BIN)/cnndsl compile specs/lenet5.cnn -o $(OUT)/lenet5.onnx
	$(BIN)/cnndsl run $(OUT)/lenet5.onnx

test: install dot lint
	$(BIN)/python -m pytest -q

# The long generated and fuzzing campaigns (see docs/testing.md).
test-full: install dot
	CNNDSL_FULL=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check cnndsl tests benchmarks docs/gen_zoo.py

# Regenerate the model zoo table in docs/zoo.md from specs/ (every number computed by cnndsl).
zoo-docs: install
	$(BIN)/python docs/gen_zoo.py

# The benchmark suite: writes benchmarks/RESULTS.md and the scaling plot (see benchmarks/run.py). The
# comparisons with PyTorch need the `bench` extra (torch, torchvision, torchinfo, matplotlib), which
# `make bench` does not install; see the README's Performance section. RUNS=3 for a quicker run.
RUNS ?= 5
bench: install dot
	$(BIN)/python benchmarks/run.py --runs $(RUNS)

clean:
	rm -rf $(VENV) $(OUT) build dist *.egg-info .pytest_cache
