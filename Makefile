# Quick start: `make demo` (set up, train the default XOR config on ngspice) and `make test`.
PY := .venv/bin/python
CONFIG ?= configs/xor.yaml
OUT ?= runs/demo
TRAIN_ARGS ?=

.PHONY: setup demo test netlists figure clean

setup:
	@bash scripts/setup.sh

# every `make demo` trains afresh: --replace removes the files of a previous run in $(OUT), and nothing else
demo: setup
	$(PY) -m metamaterial train $(CONFIG) --out $(OUT) --replace $(TRAIN_ARGS)

test: setup
	$(PY) -m pytest -q --require-ngspice --durations=15

netlists: setup
	$(PY) scripts/emit_netlists.py

clean:
	rm -rf runs .pytest_cache

figure: setup
	$(PY) scripts/readme_figure.py
