# Afflux: `make run` starts the platform, `make test` runs every test.
# Both install what they need: uv (pinned, into .tools/) and the locked workspace (.venv/).

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
PYTEST_ARGS ?=
TEST_WORKERS ?= 2
# make test runs the test files on TEST_WORKERS processes (pytest-xdist, one file's tests
# on one worker, so a module's platform is started once): most of the suite waits on real
# processes, brokers and databases rather than computing. TEST_WORKERS=0 runs in one.
# Files that must not run side by side share a worker (afflux_infra/xdist_scopes.py).

.PHONY: install run test test-fast test-tools chaos bench schemas lint clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python 3.11
	@touch $@

install: .venv/.synced ## install uv and the locked dependencies

run: install ## run the whole platform (embedded PostgreSQL + Kafka unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set)
	$(UV) run --frozen --no-sync afflux run

test: test-tools install ## every test: unit, integration, contract, end-to-end, crash and the chaos suite's short form
	$(UV) run --frozen --no-sync pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: install ## everything but the slow tests that start real service processes
	$(UV) run --frozen --no-sync pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-tools: ## what make test needs beyond Python: say exactly how to install what is missing, before any test runs
	@missing=""; \
	{ command -v chromium || command -v chromium-browser; } >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
	if [ -n "$$missing" ]; then \
	  echo "make test: missing:$$missing"; \
	  echo "  (Chromium and its driver for the partner portal's browser test, tests/browser;"; \
	  echo "   curl and jq for the README's walk-through, tests/readme.)"; \
	  echo "  Install them from Debian's packages, as root:"; \
	  echo "      apt-get update && apt-get install -y$$missing"; \
	  echo "  (or with sudo), then run make test again. make test-fast needs none of them."; \
	  exit 1; \
	fi

chaos: install ## the fault suite's long form: every fault under load, 30 s broker pause, table of what each did (~8 min on 2 cores)
	AFFLUX_CHAOS_LONG=1 $(UV) run --frozen --no-sync pytest tests/chaos -m chaos $(PYTEST_ARGS)

bench: install ## speed and memory figures, each beside a baseline measured in the same run
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(UV) run --frozen --no-sync pytest tests/load -o python_files='bench_*.py' -s -q -p no:cacheprovider $(PYTEST_ARGS)

schemas: install ## write contracts/schemas/*.json, and contracts/asyncapi.json from the services' wiring (commit the result)
	$(UV) run --frozen --no-sync python -m afflux_contracts.export
	$(UV) run --frozen --no-sync python -m afflux_infra.asyncapi

lint: install ## ruff and mypy
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync mypy contracts/src plumbing/src infra/src services/*/src examples/*/src

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
