# Build and test the book.
#
#   make venv    create .venv (once), install requirements.txt and recrl_lite (editable), and
#                Chromium for the site tests
#   make book    execute every chapter and build the website into _build/html (-n -W --keep-going)
#   make test    type check, unit tests, nbval over notebooks/ (which re-executes every chapter and
#                compares its outputs), the website from those checked outputs (`make book-stored`)
#                and the site tests, then every chapter again on shifted seeds and the torch
#                chapters with another machine's float kernels (scripts/check_chapters.py)
#
# CI runs .ci/run, which runs `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Kernels started by jupyter-book and nbval must be the venv's Python.
export PATH := $(abspath $(BIN)):$(PATH)
# (Do not set MPLBACKEND here: ipykernel only selects its inline backend when it is unset.)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JB_FLAGS := --all -W -n --keep-going

.PHONY: help venv chromium book book-stored typecheck unit nbval site-test check-seeds check-machines test vendor clean \
	mutation

# The seed shift of `make check-seeds` (any other value must pass too: SHIFT=7 make check-seeds).
SHIFT ?= 100

help:
	@echo "make venv | book | book-stored | test | typecheck | unit | nbval | site-test | check-seeds | check-machines | vendor | clean"
	@echo "     mutation   (not part of make test)"

## --------------------------------------------------------------------------- environment

venv: $(STAMP) chromium

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install -e .
	$(BIN)/python -m pip check
	touch $@

# Headless Chromium (Debian package) for tests/site. Installed only when no Chromium is found
# (the same names tests/site/conftest.py looks for; CHROMIUM=/path/to/browser skips the install).
chromium:
	@if [ -z "$${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
		&& ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then \
		echo "chromium not found: installing it with apt-get"; \
		$(SUDO) apt-get update -q; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

## --------------------------------------------------------------------------- book

# Re-create _vendor/ (offline MathJax and Mermaid) from the npm registry; the result is committed.
vendor:
	scripts/vendor_assets.sh

# A clean build every time: stale pages would hide broken links, and an incremental Sphinx build
# does not repeat warnings of unchanged pages, which -W must see.
book: $(STAMP)
	rm -rf _build/html _build/jupyter_execute
	$(BIN)/jupyter-book build . $(JB_FLAGS)

# The same site from the outputs stored in the notebooks, without executing them (seconds, not the
# ~17 minutes of `make book`). `make test` uses it after nbval has re-executed every chapter and
# compared its outputs with the stored ones, so the pages it checks are the ones a reader's
# `make book` renders. The config is _config.yml with execution off (and the local extension's
# folder made absolute, since jupyter-book resolves it against the config file's folder).
book-stored: $(STAMP)
	rm -rf _build/html _build/jupyter_execute
	mkdir -p _build
	sed -e 's/^  execute_notebooks: force$$/  execute_notebooks: "off"/' \
		-e 's|^    offline_assets: _ext$$|    offline_assets: $(CURDIR)/_ext|' _config.yml > _build/_config.stored.yml
	grep -q 'execute_notebooks: "off"' _build/_config.stored.yml
	grep -q 'offline_assets: $(CURDIR)/_ext' _build/_config.stored.yml
	$(BIN)/jupyter-book build . --config _build/_config.stored.yml $(JB_FLAGS)

## --------------------------------------------------------------------------- tests

# recrl_lite ships py.typed: its annotations are checked (settings in pyproject.toml)
typecheck: $(STAMP)
	$(BIN)/python -m mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/site

# One kernel per notebook; pytest-xdist runs two notebooks at a time (--dist loadfile keeps every
# cell of a notebook on one worker, in order). The chapters use one torch thread each.
NBVAL := -m pytest --nbval notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg -n 2 --dist loadfile
nbval: $(STAMP)
	$(BIN)/python $(NBVAL)

site-test: venv
	$(BIN)/python -m pytest tests/site

# Every claim must hold for every reader. Re-execute each chapter with all its seeds moved by
# SHIFT (the cell tagged `parameters`; its asserts must still hold), and re-execute the chapters
# that train torch models with torch's portable float kernels, which round differently, as
# another CPU would (ATEN_CPU_CAPABILITY=default). Executed copies go to a temporary folder.
# check-machines also runs nbval with numpy's baseline SIMD code and OpenBLAS's oldest x86 kernels,
# so that an output stored as exact but computed differently on another CPU is caught here.
OTHER_CPU := OPENBLAS_CORETYPE=Prescott NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR"

check-seeds: $(STAMP)
	$(BIN)/python scripts/check_chapters.py --shift $(SHIFT) --jobs 2

check-machines: $(STAMP)
	$(BIN)/python scripts/check_chapters.py --aten default --torch-only --jobs 2
	$(OTHER_CPU) $(BIN)/python $(NBVAL)

test: venv
	$(MAKE) typecheck
	$(MAKE) unit
	$(MAKE) nbval
	$(MAKE) book-stored
	$(MAKE) site-test
	$(MAKE) check-seeds
	$(MAKE) check-machines

## --------------------------------------------------------------------------- beyond `make test`

# Mutation testing with mutmut ([tool.mutmut] in pyproject.toml): hours for the four packages on
# 2 cores, so not in CI. A run resumes where it stopped. MUTANTS narrows it to mutmut's mutant names:
#   make mutation MUTANTS='recrl_lite.envs.ecommerce.*'
# The score per module is printed and written to _build/mutation/scores.csv.
MUTANTS ?=
mutation: $(STAMP)
	$(BIN)/python -m pip install -q "mutmut==3.8.1"
	$(BIN)/mutmut run --max-children $$(nproc) $(MUTANTS)
	$(BIN)/python scripts/mutation_scores.py

clean:
	rm -rf _build
