# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRO := $(BIN)/pro-app
HOST ?= 127.0.0.1
PORT ?= 5000

export PRO_ENV ?= development

.PHONY: run test install install-test install-bench browser-deps translations db demo serve lint \
	typecheck check clean-db bench

run: install translations db demo serve  ## install, create the SQLite database, load demo data, serve

test: install-test translations browser-deps  ## install test dependencies and run the whole suite
	$(BIN)/pytest --cov --cov-report=term

# Benchmarks print their figures (docs/performance.md). PostgreSQL figures when
# PRO_BENCH_POSTGRES_URI names a database whose public schema may be dropped.
bench: install-bench translations
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "The throughput benchmark needs wrk: sudo apt-get install wrk" >&2; exit 1; fi; }
	$(BIN)/python bench/run_all.py

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps: an install is redone when pyproject.toml changes, so that several `make test` runs
# (CI runs SQLite and PostgreSQL side by side) share one installation.
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-bench: $(VENV)/.installed-bench

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --editable .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --editable ".[test]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --editable ".[test,bench]"
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

# Browser tests drive Debian's chromium (never a downloaded browser) and inject axe-core from npm.
browser-deps: tests/browser/node_modules/axe-core/axe.min.js
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

tests/browser/node_modules/axe-core/axe.min.js: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent

# Compiled catalogues are rebuilt whenever a .po file is newer: never stale.
PO_FILES := $(wildcard translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)
translations: $(MO_FILES)

$(MO_FILES) &: $(PO_FILES) $(VENV)/.installed
	$(PRO) translate compile

db:
	$(PRO) init-db

demo:
	$(PRO) demo

serve:  ## the web app and the reminder scheduler in one development process
	@echo "Serving on http://$(HOST):$(PORT)  (stop with Ctrl+C)"
	$(PRO) devserver --host $(HOST) --port $(PORT)

lint:
	$(BIN)/ruff check pro_app tests bench
	$(BIN)/ruff format --check pro_app tests bench

typecheck:
	$(BIN)/mypy

check:
	$(PRO) check

clean-db:  ## delete the development database (the next `make run` loads the demo again)
	rm -f instance/pro_app.sqlite3 instance/pro_app.sqlite3-wal instance/pro_app.sqlite3-shm
