# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRO := $(BIN)/pro-app
HOST ?= 127.0.0.1
PORT ?= 5000

export PRO_ENV ?= development

.PHONY: run test install install-test browser-deps translations db demo serve lint typecheck check clean-db

run: install translations db demo serve  ## install, create the SQLite database, load demo data, serve

test: install-test translations browser-deps  ## install test dependencies and run the whole suite
	$(BIN)/pytest --cov --cov-report=term

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/activate
	$(BIN)/pip install --quiet --editable .

install-test: $(BIN)/activate
	$(BIN)/pip install --quiet --editable ".[test]"

# Browser tests drive Debian's chromium (never a downloaded browser) and inject axe-core from npm.
browser-deps: tests/browser/node_modules/axe-core/axe.min.js
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

tests/browser/node_modules/axe-core/axe.min.js: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent

translations:
	$(PRO) translate compile

db:
	$(PRO) init-db

demo:
	$(PRO) demo

serve:  ## the web app and the reminder scheduler in one development process
	@echo "Serving on http://$(HOST):$(PORT)  (stop with Ctrl+C)"
	$(PRO) devserver --host $(HOST) --port $(PORT)

lint:
	$(BIN)/ruff check pro_app tests
	$(BIN)/ruff format --check pro_app tests

typecheck:
	$(BIN)/mypy

check:
	$(PRO) check

clean-db:  ## delete the development database (the next `make run` loads the demo again)
	rm -f instance/pro_app.sqlite3 instance/pro_app.sqlite3-wal instance/pro_app.sqlite3-shm
