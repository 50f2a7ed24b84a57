# Klients entry points. Each target installs and starts what it needs on a fresh Debian machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: run stop test lint bench env services-for-tests clean screenshots

run:            ## run the whole system on this machine (Ctrl-C or `make stop` stops it)
	@bash deploy/run.sh

stop:           ## stop what `make run` started
	@bash deploy/stop.sh

env:            ## create/update the Python environment (.venv)
	@bash deploy/python-env.sh

services-for-tests: env
	@bash deploy/test-services.sh

test: services-for-tests  ## run the whole test suite against real RabbitMQ, PostgreSQL, Keycloak and SMTP
	$(PY) -m pytest $(PYTEST_ARGS)

lint: env       ## ruff on everything, mypy (strict) on the shared auth module
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy

bench: services-for-tests  ## benchmarks (wrk; BENCH_ONLY=identity,keycloak for a subset); bench/results, bench/summary.json
	bash bench/setup.sh
	$(PY) bench/run.py

screenshots: services-for-tests  ## the operator guide's and the portal's pictures (docs/img, docs/img/portal), taken by the browser tests
	SCREENSHOTS_DIR=docs/img $(PY) -m pytest -q tests/test_access_browser.py tests/test_keycloak_console.py \
	  tests/test_portal_a11y.py tests/test_portal_browser.py

clean:          ## remove local state (databases, logs, mail); keeps the Keycloak download
	@bash deploy/stop.sh; rm -rf var/log var/run var/mail var/*.db*
