# Two commands for a newcomer: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM := /usr/bin/chromium
PORT ?= 8501

# What gets installed is requirements-lock.txt: every package, dependencies included, pinned with its hashes,
# so a changed or substituted file on the index fails the install. requirements*.txt say what we ask for;
# `make lock` turns them into the lock (tests/test_lock.py fails while the two disagree).
LOCK := requirements-lock.txt
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2

.PHONY: reset run test test-fast lint screenshots sandbox bench chromium postgresql clean lock

$(VENV)/.installed: $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	touch $@

# Needs the package index (minutes: it hashes every file of every pinned release). pip-tools lives in a venv
# of its own, so neither it nor its dependencies end up in the lock.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(PIP_TOOLS); }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--rebuild --output-file $(LOCK) requirements-dev.txt

# The browser tests drive Debian's Chromium; Playwright's own browser download cannot work here.
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The store tests run on PostgreSQL too: each session starts a throwaway server from Debian's binaries.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Start over in local mode: forget the embedded sandbox's account and the store that mirrors it (the next
# `make run` seeds ALMA_OPS_DEMO_INTENTS afresh). Stop the app first. A PostgreSQL store is left alone.
reset:
	rm -f .data/alma_ops.sqlite3 .data/alma_ops.sqlite3-wal .data/alma_ops.sqlite3-shm \
		.data/alma_ops.sqlite3.sandbox.jsonl .data/alma_ops.sqlite3.sandbox.seed

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

test: lint chromium postgresql
	$(PY) -m pytest -q

test-fast: lint postgresql
	$(PY) -m pytest -q -m "not e2e"

# The README's pictures: the browser flows again, saving each page they end on into docs/.
screenshots: $(VENV)/.installed chromium
	E2E_SCREENSHOTS=docs $(PY) -m pytest -q tests/e2e/test_flows.py tests/e2e/test_newcomer_browser.py tests/e2e/test_sign_in_browser.py \
		tests/e2e/test_screen_sizes_browser.py

bench: $(VENV)/.installed postgresql
	$(PY) benchmarks/bench_sandbox.py
	$(PY) benchmarks/bench_sync.py
	$(PY) benchmarks/bench_pages.py

clean:
	rm -rf $(VENV) $(LOCK_VENV) .data .pytest_cache
