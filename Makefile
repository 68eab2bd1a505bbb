# Quick start: `make demo` (set up, train the default XOR config on ngspice) and `make test`.
PY := .venv/bin/python
CONFIG ?= configs/xor.yaml
OUT ?= runs/demo

.PHONY: setup demo test netlists figure clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m metamaterial train $(CONFIG) --out $(OUT)

test: setup
	$(PY) -m pytest -q --require-ngspice

netlists: setup
	$(PY) scripts/emit_netlists.py

clean:
	rm -rf runs .pytest_cache

figure: setup
	$(PY) scripts/readme_figure.py
