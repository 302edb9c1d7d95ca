# gorun: `make run` and `make test` are the two set-up commands (README.md).
# Everything installs into .venv from pyproject.toml; nothing depends on what was installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := pyproject.toml setup.py $(wildcard native/*.c native/*.h)
JOBS ?= auto
ARGS ?=

.PHONY: install run test stress bench lint clean sizeclasses

install: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

# The default workload across worker processes (one per CPU), then the summary.
run: install
	$(BIN)/gorun run alloc $(ARGS)

test: install
	$(BIN)/python -m pytest -n $(JOBS) -q $(ARGS)

stress: install
	$(BIN)/python -m pytest -n $(JOBS) -q -m stress $(ARGS)

bench: install
	$(BIN)/python bench/run_all.py $(ARGS)

lint: install
	$(BIN)/python -m pip install -q ruff
	$(BIN)/python -m gorun.sizeclasses --check
	$(BIN)/python -m ruff check --select E,F,W --ignore E501,E731 gorun tests bench
	mkdir -p build && GORUN_DEBUG=1 $(BIN)/python setup.py -q build_ext --build-temp build/debug --build-lib build/debug-lib 2>&1 | tee build/debug.log; ! grep -q "warning:" build/debug.log

sizeclasses:
	$(PY) -m gorun.sizeclasses

clean:
	-$(BIN)/gorun clean 2>/dev/null || $(PY) -c "import sys; sys.path.insert(0, '.'); from gorun.shm import clean_stale; print(clean_stale())" 2>/dev/null || true
	rm -rf build *.egg-info gorun/*.so .pytest_cache .hypothesis $(STAMP)
	find . -name __pycache__ -prune -exec rm -rf {} +
