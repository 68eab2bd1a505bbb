# Quick start: `make demo` (set up, train the default XOR config on ngspice) and `make test`.
PY := .venv/bin/python
CONFIG ?= configs/xor.yaml
OUT ?= runs/demo
TRAIN_ARGS ?=

.PHONY: setup demo test netlists figure clean

setup:
	@bash scripts/setup.sh

# every `make demo` trains afresh: the previous demo run in $(OUT) (a folder holding config.yaml) is replaced
demo: setup
	@if [ -f "$(OUT)/config.yaml" ]; then echo "demo: replacing the previous demo run in $(OUT)"; rm -rf "$(OUT)"; fi
	$(PY) -m metamaterial train $(CONFIG) --out $(OUT) $(TRAIN_ARGS)

test: setup
	$(PY) -m pytest -q --require-ngspice

netlists: setup
	$(PY) scripts/emit_netlists.py

clean:
	rm -rf runs .pytest_cache

figure: setup
	$(PY) scripts/readme_figure.py
