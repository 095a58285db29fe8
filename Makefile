# netwatch developer commands. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.yaml
# pytest-xdist workers: two per core. Half a test's time is spent waiting (for a netwatch process, a
# socket, a deadline), so one worker per core left the cores idle half the time.
TEST_WORKERS ?= $(shell echo $$((2 * $$(nproc))))

.PHONY: install run test lint bench schema clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/netwatch run ping-sweep --config $(CONFIG)

# Bytecode caching on even where the environment turns it off: pytest's assertion rewriting of every
# test module then happens once, not in each worker and each pytest the tests start (5 s each).
test: install
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check netwatch tests bench
	$(BIN)/netwatch db schema | diff -u schema.sql -

bench: install
	@command -v fping >/dev/null || apt-get install -y -qq fping >/dev/null || echo "fping not installed: the comparison is skipped"
	$(BIN)/python bench/ping_sweep.py
	$(BIN)/python bench/event_scan.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/http_check.py

schema: install
	$(BIN)/netwatch db schema > schema.sql

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache netwatch.db netwatch.db-wal netwatch.db-shm
