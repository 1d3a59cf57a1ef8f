# Inclusive Ventures: `make run` serves the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
FLASK  := $(BIN)/flask --app inclusive
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test worker lint format translations extract-messages clean faults

# A virtual environment with the platform installed (again whenever pyproject.toml changes).
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version))."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) \
	  || { echo "Could not create $(VENV): on Debian or Ubuntu run 'sudo apt install python3-venv'."; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

# The same, with what the tests need.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

# Compiled message catalogues (English, Spanish, Portuguese).
translations: $(VENV)/.installed
	@$(BIN)/pybabel -q compile -d inclusive/translations

# Migrate, load the demo data, then serve on http://127.0.0.1:$(PORT) (with a worker when REDIS_URL is set).
run: translations
	$(FLASK) db upgrade
	$(FLASK) demo-data
	@set -e; \
	if [ -n "$$REDIS_URL" ]; then \
	  $(FLASK) worker & worker=$$!; \
	  $(FLASK) cron & cron=$$!; \
	  trap 'kill $$worker $$cron 2>/dev/null; wait $$worker $$cron 2>/dev/null' EXIT INT TERM; \
	  echo "RQ worker $$worker and cron scheduler $$cron started beside the web server."; \
	fi; \
	echo "Serving on http://127.0.0.1:$(PORT)  (Ctrl-C stops)"; \
	$(FLASK) run --host 127.0.0.1 --port $(PORT) --no-reload

# An RQ worker (with its scheduler) for the platform's queue; needs REDIS_URL.
worker: translations
	$(FLASK) worker

# The whole suite: PostgreSQL when DATABASE_URL is set, SQLite otherwise.
test: $(VENV)/.installed-test translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmark (not a test, it stays out of CI): BENCH_SCALE producers (default 1000000) in
# PostgreSQL on 127.0.0.1 (or DATABASE_URL), served by gunicorn and loaded by wrk; see bench/run.py.
.PHONY: bench
bench: $(VENV)/.installed-test translations
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.delivery

# Fault injection: SIGKILLed workers, a Redis flush and a rollback against the outbox.
faults: $(VENV)/.installed-test translations
	$(BIN)/python -m faults.run

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Collect the strings to translate into the catalogues (for translators).
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -o inclusive/translations/messages.pot .
	$(BIN)/pybabel update -i inclusive/translations/messages.pot -d inclusive/translations --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
