# paced — common tasks. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests run against SQLite always, and against this PostgreSQL server too (set it empty
# to skip PostgreSQL on a machine that has none).
PACED_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
export PACED_TEST_DATABASE_URL
# torch is pinned so pip takes the local CPU wheel instead of a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
PORT ?= 8000

.PHONY: install test lint typecheck format serve demo teacher experiment experiment-quick bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[postgres,trainer,dev,trl]" "$(TORCH_PIN)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Strict on the core, the domain and the client's public API ([tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

serve: $(STAMP)
	$(BIN)/paced serve --port $(PORT)

teacher: $(STAMP)
	$(BIN)/paced teacher --workdir work/task

demo: $(STAMP)
	$(BIN)/python -m trainer_client.demo

experiment: $(STAMP)
	$(BIN)/python experiments/compare.py

experiment-quick: $(STAMP)
	$(BIN)/python experiments/compare.py --quick

bench: $(STAMP)
	$(BIN)/python bench/sampling.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis paced.db paced.db-*
