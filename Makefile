# Set-up is idempotent: the virtual environment is created only when missing
# (or when pyproject.toml / constraints.txt change).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint bench venv clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/raynas search quickstart

# The default tier runs on TEST_WORKERS pytest-xdist workers, each test file whole on one worker (its module
# fixtures run once): on 2 cores much of a test is spent waiting for a Ray to start, which the other worker
# fills (8 minutes instead of 11 idle). `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# ruff (pyproject.toml's [tool.ruff]) over the package, tools and tests; mypy ([tool.mypy]) over the package
lint: $(STAMP)
	$(BIN)/ruff check raynas tools tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python tools/bench_supernet.py

clean:
	rm -rf $(VENV) build *.egg-info
