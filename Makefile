# gorun: `make run` and `make test` are the two set-up commands (README.md).
# Everything installs into .venv from pyproject.toml; nothing depends on what was installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := pyproject.toml setup.py $(wildcard native/*.c native/*.h)
JOBS ?= auto
ARGS ?=
# The fast part of the suite (README "Tests", docs/design.md "Debug builds"): everything but the
# stress soak and the tests marked slow. make debug-test and make sanitize run it.
FAST := -m 'not stress and not slow'
DEBUG_LEVEL ?= 2
# The interpreter is not instrumented: the ASan runtime is preloaded into it (and so into every
# process of the run). An ASan report is written to build/sanitize/reports/ and fails the target
# even when the test that met it expected its child to die. UBSan, linked beside ASan, ignores
# log_path: its report goes to the stderr of the process that hit it, which exits 66.
ASAN_RT = $(shell gcc -print-file-name=libasan.so)
# C++ extensions the suite imports (matplotlib's ft2font, for gorun plot) throw exceptions: ASan's
# __cxa_throw interceptor needs libstdc++ loaded when ASan starts, so it is preloaded after it.
CXX_RT = $(shell gcc -print-file-name=libstdc++.so.6)
SAN_REPORTS := build/sanitize/reports
SAN_ENV = LD_PRELOAD="$(ASAN_RT) $(CXX_RT)" \
	ASAN_OPTIONS=detect_leaks=0:allow_user_segv_handler=1:exitcode=66:log_path=$(CURDIR)/$(SAN_REPORTS)/asan \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=66

.PHONY: install run test stress bench compare lint format clean sizeclasses debug-test sanitize

install: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=77'  # setup.py build_ext of the variants reads pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test,bench,dev,go]'
	touch $(STAMP)

# The default workload across worker processes (one per CPU), then the summary.
run: install
	$(BIN)/gorun run alloc $(ARGS)

test: install
	$(BIN)/python -m pytest -n $(JOBS) -q $(ARGS)

stress: install
	$(BIN)/python -m pytest -n $(JOBS) -q -m stress $(ARGS)

# Out-of-tree build variants. build/<variant>/lib holds the extension built with the variant's
# flags; build/<variant>/tree is a copy of the package, the tests and native/ with that
# extension inside, so the in-place extension of make test is never touched. pytest runs in the
# tree with GORUN_EXPECT_* set: conftest.py refuses to run against any other build.
define variant_tree
	rm -rf $(1)/tree && mkdir -p $(1)/tree
	cp -r gorun tests native docs pyproject.toml $(1)/tree/
	rm -f $(1)/tree/gorun/*.so && find $(1)/tree -name __pycache__ -prune -exec rm -rf {} +
	cp $(1)/lib/gorun/_gorun*.so $(1)/tree/gorun/
endef

build/debug/.built-$(DEBUG_LEVEL): $(SOURCES) $(STAMP)
	rm -rf build/debug && mkdir -p build/debug
	GORUN_DEBUG=$(DEBUG_LEVEL) $(BIN)/python setup.py -q build_ext -j 2 --build-temp build/debug/obj --build-lib build/debug/lib
	touch $@

build/sanitize/.built: $(SOURCES) $(STAMP)
	rm -rf build/sanitize && mkdir -p build/sanitize
	GORUN_SANITIZE=1 $(BIN)/python setup.py -q build_ext -j 2 --build-temp build/sanitize/obj --build-lib build/sanitize/lib
	touch $@

# The fast suite against the debug build (validity walkers on; GORUN_DEBUG=2 by default).
debug-test: build/debug/.built-$(DEBUG_LEVEL)
	$(call variant_tree,build/debug)
	cd build/debug/tree && GORUN_EXPECT_DEBUG=$(DEBUG_LEVEL) GORUN_EXPECT_SANITIZE=0 \
		$(CURDIR)/$(BIN)/python -m pytest -n $(JOBS) -q -p no:cacheprovider $(FAST) $(ARGS)

# The fast suite against the ASan + UBSan build.
sanitize: build/sanitize/.built
	$(call variant_tree,build/sanitize)
	rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	cd build/sanitize/tree && GORUN_EXPECT_DEBUG=0 GORUN_EXPECT_SANITIZE=1 $(SAN_ENV) \
		$(CURDIR)/$(BIN)/python -m pytest -n $(JOBS) -q -p no:cacheprovider $(FAST) $(ARGS)
	@if [ -n "$$(ls -A $(SAN_REPORTS))" ]; then \
		echo "sanitizer reports in $(SAN_REPORTS):"; cat $(SAN_REPORTS)/*; exit 1; fi

bench: install
	$(BIN)/python bench/run_all.py $(ARGS)

# gorun against Go (README "gorun against Go"): binary-trees and GCBench at P=1 and P=2 through
# `gorun compare`, with benchstat lines. The go extra installs the toolchain.
compare: install
	$(BIN)/python bench/bench_compare.py $(ARGS)

LINT_PATHS := gorun tests bench
# the Go twins of the workloads (gorun compare): vetted and gofmt-clean, with the go extra's toolchain, offline
GO_ENV := GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off

# Lint: the size-class table against its generator, ruff (rules in pyproject.toml), the format of
# every Python and C file (ruff format, clang-format with .clang-format; `make format` applies
# them), go vet and gofmt on gorun/goprogs, what docs/design.md states that can be checked (its
# ABI version, its file map), and the two -Werror variant builds.
lint: install
	$(BIN)/python -m gorun.sizeclasses --check
	$(BIN)/python -m ruff check $(LINT_PATHS)
	$(BIN)/python -m ruff format --check $(LINT_PATHS)
	$(BIN)/clang-format --dry-run --Werror native/*.c native/*.h
	cd gorun/goprogs && $(GO_ENV) $(CURDIR)/$(BIN)/go vet ./... && test -z "$$($$($(GO_ENV) $(CURDIR)/$(BIN)/go env GOROOT)/bin/gofmt -l .)"
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_design_doc.py
	$(MAKE) build/debug/.built-$(DEBUG_LEVEL) build/sanitize/.built  # -Werror: a warning fails the build

format: install
	$(BIN)/python -m ruff format $(LINT_PATHS)
	$(BIN)/clang-format -i native/*.c native/*.h
	cd gorun/goprogs && $(GO_ENV) $(CURDIR)/$(BIN)/go fmt ./...

sizeclasses:
	$(PY) -m gorun.sizeclasses

clean:
	-$(BIN)/gorun clean 2>/dev/null || $(PY) -c "import sys; sys.path.insert(0, '.'); from gorun.shm import clean_stale; print(clean_stale())" 2>/dev/null || true
	rm -rf build *.egg-info gorun/*.so .pytest_cache .hypothesis $(STAMP)
	find . -name __pycache__ -prune -exec rm -rf {} +
