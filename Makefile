# The two commands that matter: `make demo` and `make test`. Everything installs from the
# committed hash-pinned lock (requirements.lock) into .venv with the machine's Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
STAMP := $(VENV)/.installed

.PHONY: install test demo bench chaos lint lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python benchmarks/run.py

chaos: install
	$(BIN)/python -m pytest -q -m chaos -p no:cacheprovider

# Refresh the lock after changing dependencies in pyproject.toml (records versions and hashes only).
lock:
	$(UV) pip compile pyproject.toml --extra dev --extra openlineage --python-version 3.11 --generate-hashes \
		--no-emit-index-url --no-emit-find-links -o requirements.lock

clean:
	rm -rf $(VENV) airflow_home .pytest_cache build *.egg-info

# A real Airflow deployment (api-server, scheduler, dag-processor, triggerer) running the sharded
# backfill twice at once with a shard killed: minutes long, so outside `make test`.
.PHONY: airflow-deployment
airflow-deployment: install
	PINPOINT_AIRFLOW_DEPLOYMENT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/deployment
