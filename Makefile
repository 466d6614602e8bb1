# The two commands that matter: `make demo` and `make test`. Everything installs from the committed
# hash-pinned locks with the machine's Python 3.11: requirements.lock (every extra, for development)
# into .venv, and requirements-lean.lock (the package without extras, plus the test runner) into
# .venv-lean, where the CLI and notebook tests run without Airflow installed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LEAN := .venv-lean
UV := $(PYTHON) -m uv
STAMP := $(VENV)/.installed
LEAN_STAMP := $(LEAN)/.installed
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
# The tests that need no Airflow: the CLI, the notebook API, the emulator, and the Parquet reading that
# depends most on the reader's behaviour, which the oldest pyarrow may change.
LEAN_TESTS := tests/test_cli.py tests/test_load.py tests/test_sample_data.py tests/test_startup.py tests/emulator \
	tests/prepare/test_read_parquet_dictionary.py
# The committed Parquet files (sample data, bad-input corpus) embed the writer's version, so their
# byte-for-byte checks hold only with the locked pyarrow: left out where the oldest versions are installed.
LOWEST_SKIP := --deselect tests/test_sample_data.py::test_committed_files_are_what_the_seeded_script_makes \
	--deselect tests/bad_input/test_bad_input.py::test_the_committed_corpus_is_what_the_script_writes
COMPILE := $(UV) pip compile pyproject.toml --python-version 3.11 --generate-hashes --no-emit-index-url --no-emit-find-links

.PHONY: install install-lean install-lowest test test-lean test-lowest demo bench chaos lint lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --python $(BIN)/python --require-hashes --compile-bytecode requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install-lean: $(LEAN_STAMP)

$(LEAN_STAMP): requirements-lean.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(LEAN)
	$(UV) pip sync --python $(LEAN)/bin/python --require-hashes --compile-bytecode requirements-lean.lock
	$(UV) pip install --python $(LEAN)/bin/python --no-deps --no-build-isolation -e .
	@touch $(LEAN_STAMP)

# The oldest versions pyproject.toml claims (uv's lowest-direct resolution), so the lower bounds are tested.
install-lowest: $(LOWEST_STAMP)

$(LOWEST_STAMP): requirements-lowest.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(LOWEST)
	$(UV) pip sync --python $(LOWEST)/bin/python --require-hashes --compile-bytecode requirements-lowest.lock
	$(UV) pip install --python $(LOWEST)/bin/python --no-deps --no-build-isolation -e .
	@touch $(LOWEST_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install lint test-lean test-lowest
	$(BIN)/python -m pytest -q

# The lean install: no Airflow may be importable there, and the CLI and notebook tests pass without it.
test-lean: install-lean
	@! $(LEAN)/bin/python -c "import airflow" 2>/dev/null || { echo "Airflow is installed in $(LEAN)"; exit 1; }
	$(LEAN)/bin/python -m pytest -q -p no:cacheprovider $(LEAN_TESTS)

# The lean tests again with the lowest versions of every dependency that pyproject.toml allows.
test-lowest: install-lowest
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_SKIP) $(LEAN_TESTS)

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python benchmarks/run.py

chaos: install
	$(BIN)/python -m pytest -q -m chaos -p no:cacheprovider

# Refresh the locks after changing dependencies in pyproject.toml (records versions and hashes only).
lock:
	$(COMPILE) --extra dev -o requirements.lock
	$(COMPILE) --extra test --constraint requirements.lock -o requirements-lean.lock
	$(COMPILE) --extra test --resolution lowest-direct -o requirements-lowest.lock

clean:
	rm -rf $(VENV) $(LEAN) $(LOWEST) airflow_home .pytest_cache build *.egg-info

# A real Airflow deployment (api-server, scheduler, dag-processor, triggerer) running the sharded
# backfill twice at once with a shard killed: minutes long, so outside `make test`.
.PHONY: airflow-deployment
airflow-deployment: install
	PINPOINT_AIRFLOW_DEPLOYMENT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/deployment
