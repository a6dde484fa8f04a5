# Two commands on a fresh machine:
#   make run    set up (first time only) and open slmdesk with its starter model
#   make test   set up (first time only) and run the whole test suite with lint and type checks
# Both create .venv here and install what they need themselves.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.slmdesk-installed
SYSDEPS := .ci/system-deps.sh

.PHONY: run test setup lint bench package clean

$(STAMP): pyproject.toml
	bash $(SYSDEPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing slmdesk and its dependencies (llama-cpp-python compiles on first install: ~6 min on 2 cores)"
	$(PY) -m pip install --quiet -e '.[test,starter]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m slmdesk models starter
	$(PY) -m slmdesk gui

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -ra -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m bench all

# make package: the build to ship, with a portable llama.cpp (compiled once, ~30 min, cached in
# build/). PACKAGE_ARGS=--native-llama reuses .venv's llama.cpp instead: quick, but built for this
# CPU only, so such a package is for local testing and may crash on older computers.
package: $(STAMP)
	$(PY) packaging/build.py $(PACKAGE_ARGS)

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
