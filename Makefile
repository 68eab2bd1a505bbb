# Quick start: `make demo` (set up, train the default XOR config on ngspice) and `make test`.
PY := .venv/bin/python
CONFIG ?= configs/xor.yaml
OUT ?= runs/demo
TRAIN_ARGS ?=
# test processes (pytest-xdist): one per core, at most 4 (each holds its own ngspice and kernels: up to 0.7 GB);
# `make test TEST_WORKERS=0` runs the suite in this one process
TEST_WORKERS ?= auto --maxprocesses=4

.PHONY: setup demo test netlists figure clean

setup:
	@bash scripts/setup.sh

# every `make demo` trains afresh: --replace removes the files of a previous run in $(OUT), and nothing else
demo: setup
	$(PY) -m metamaterial train $(CONFIG) --out $(OUT) --replace $(TRAIN_ARGS)

test: setup
	$(PY) -m pytest -q --require-ngspice --durations=15 -n $(TEST_WORKERS)

netlists: setup
	$(PY) scripts/emit_netlists.py

clean:
	rm -rf runs .pytest_cache

figure: setup
	$(PY) scripts/readme_figure.py
