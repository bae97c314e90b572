# One command each: `make demo` (set up + run the main job), `make test` (set up + run the tests).
# Both create the virtual environment on first use. GPU users: make setup TORCH="torch --index-url URL" (see README).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean-cache
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev,fast]"
	$(BIN)/hybridir models --build
	touch $@

demo: setup
	$(BIN)/hybridir study studies/smoke.yaml --out runs/studies/smoke
	@awk '/^## /{p = /every arm at every scoring|^## Targets/} p' runs/studies/smoke/study.md

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -ra --durations=15

bench: setup
	$(BIN)/python bench/eval_speed.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/cli_start.py

clean-cache:
	rm -rf $${HYBRIDIR_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/hybridir}
