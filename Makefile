# Two commands for a newcomer: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM := /usr/bin/chromium
PORT ?= 8501

.PHONY: run test test-fast lint sandbox bench chromium clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The browser tests drive Debian's Chromium; Playwright's own browser download cannot work here.
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: $(VENV)/.installed
	@echo "Alma Ops: http://localhost:$(PORT)"
	$(PY) -m streamlit run streamlit_app.py --server.port $(PORT)

sandbox: $(VENV)/.installed
	$(PY) -m dashboard.sandbox --seed-demo 300

# Lint and types first: they take seconds, the tests minutes.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint chromium
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -q -m "not e2e"

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_sandbox.py
	$(PY) benchmarks/bench_sync.py

clean:
	rm -rf $(VENV) .data .pytest_cache
