# hopthu — everyday commands. `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: model help venv demo test test-postgres bench bench-scaleout compose-config lint format clean distclean

help:
	@echo "make demo           seed a demo database and run the server with a live simulator (http://127.0.0.1:8080)"
	@echo "make test           ruff + the test suite on SQLite (or on HOPTHU_TEST_DATABASE_URL when set)"
	@echo "make test-postgres  the test suite on $(POSTGRES_TEST_URL)"
	@echo "make bench          run every bench/*.py"
	@echo "make model          regenerate nlp/corpus/chat.csv and rebuild the shipped NLP model (seeded)"
	@echo "make bench-scaleout one vs two server processes on PostgreSQL + Redis (bench/scaleout.py)"
	@echo "make compose-config validate docker-compose.yml (needs docker compose; see docs/deploy.md)"
	@echo "make lint           ruff check + ruff format --check"
	@echo "make venv           create $(VENV) (Python >= 3.11) and install hopthu with its test extras"
	@echo "make clean          remove caches and the demo database; make distclean also removes $(VENV)"

venv: $(STAMP)

# Re-installs only when pyproject.toml changes (the install is editable: code changes need nothing).
$(STAMP): pyproject.toml
	@set -e; \
	if [ ! -x "$(BIN)/python" ]; then \
		py=""; \
		for candidate in $(PYTHON_CANDIDATES); do \
			if command -v "$$candidate" >/dev/null 2>&1 && \
				"$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
				py="$$candidate"; break; \
			fi; \
		done; \
		if [ -z "$$py" ]; then \
			echo "error: hopthu needs Python 3.11 or newer (tried: $(PYTHON_CANDIDATES))" >&2; exit 1; \
		fi; \
		echo "Creating $(VENV) with $$py ($$($$py -c 'import sys; print(sys.version.split()[0])'))"; \
		if ! "$$py" -m venv "$(VENV)"; then \
			rm -rf "$(VENV)"; \
			echo "error: '$$py -m venv' failed; on Debian/Ubuntu install the venv module first:" >&2; \
			echo "       sudo apt-get install python3-venv" >&2; \
			exit 1; \
		fi; \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The shipped NLP model, rebuilt from the project's own corpus only (seeded: same files every time).
model: venv
	$(BIN)/python -m nlp.build

demo: venv
	$(BIN)/hopthu demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-postgres: venv
	HOPTHU_TEST_DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/pytest -q

# Every bench/*.py (see bench/README.md for the table of targets); one that crashes is reported, the rest still run.
bench: venv
	@shopt -s nullglob; scripts=(bench/*.py); failed=(); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no bench/*.py scripts yet"; exit 0; fi; \
	for script in "$${scripts[@]}"; do \
		echo "==> $$script"; \
		$(BIN)/python "$$script" || failed+=("$$script"); \
	done; \
	if [ $${#failed[@]} -gt 0 ]; then echo "benchmarks that crashed: $${failed[*]}"; exit 1; fi

bench-scaleout: venv
	$(BIN)/python bench/scaleout.py

compose-config:
	HOPTHU_SECRET_KEY=check POSTGRES_PASSWORD=check docker compose -f docker-compose.yml config -q && echo "docker-compose.yml: ok"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist bench/out test-artifacts
	rm -f hopthu-demo.db hopthu-demo.db-wal hopthu-demo.db-shm hopthu-demo.db-journal
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
