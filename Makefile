# augflow: `make run` for the experiment, `make test` for the test suite.
# Both set everything up first: a virtual environment from requirements.lock
# and the Fashion-MNIST dataset (Debian package dataset-fashion-mnist).

SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
UV_VERSION := 0.13.8

# Run the environment's tools (dvc, prefect, python) first, and call no one home.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

.PHONY: run flow serve test test-tools lint bench setup venv dataset lock clean

# Install Debian packages, refreshing the package lists only if the first try fails.
apt_get = { apt-get install -y -qq $(1) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(1) >/dev/null; }; }

# JOBS: stages at once (default: the usable cores); a setting of the machine, the results do not depend on it.
run: setup  ## the experiment on params.yaml, independent stages at once, then the verdict
	python -m tasks.common.params
	python -m tasks.orchestration.parallel $(if $(JOBS),--jobs $(JOBS))
	python -m tasks.evaluate --show

# DASK=tcp://host:8786: the study's runs on that Dask scheduler's workers, through study/'s default DVC remote (docs/cluster.md).
.PHONY: study
study: setup  ## the scaling study (study/dvc.yaml, a DVC project of its own, not part of run): reports/scaling.json and .png
	python -m tasks.common.params
	$(if $(DASK),python -m flows.study --dask $(DASK),python -m tasks.orchestration.parallel --repo study) $(if $(JOBS),--jobs $(JOBS))

# Seeds in rounds until every comparison in decide.comparisons is decided or the budget in params.yaml is spent (docs/verdict.md).
# DASK=tcp://host:8786: each round's training stages on that scheduler's workers, as a Prefect flow run.
.PHONY: decide
decide: setup  ## add seeds until the verdict is decided: params.yaml's train.seeds ends holding them; reports/decide.md
	python -m tasks.common.params
	$(if $(DASK),python -m flows.decide --dask $(DASK),python -m tasks.decide) $(if $(JOBS),--jobs $(JOBS))
	python -m tasks.evaluate --show

# DASK=tcp://host:8786: the training stages on that Dask scheduler's workers, through the default DVC remote (docs/cluster.md).
flow: setup  ## the same pipeline as a Prefect flow run (no server needed)
	python -m flows.experiment $(if $(JOBS),--jobs $(JOBS)) $(if $(DASK),--dask $(DASK))
	python -m tasks.evaluate --show

# make serve PORT=4200 REPORTS_PORT=4201 NIGHTLY_CRON="0 2 * * *" NIGHTLY_TIMEZONE=UTC (the defaults)
serve: setup  ## a Prefect server on 127.0.0.1, the deployments of prefect.yaml and a worker; Ctrl-C stops them
	python -m flows.serve $(if $(PORT),--port $(PORT)) $(if $(REPORTS_PORT),--reports-port $(REPORTS_PORT)) \
	  $(if $(NIGHTLY_CRON),--nightly-cron "$(NIGHTLY_CRON)") $(if $(NIGHTLY_TIMEZONE),--nightly-timezone "$(NIGHTLY_TIMEZONE)")

test: setup test-tools  ## the whole test suite
	python -m pytest

lint: $(VENV)/.installed  ## ruff's lint and format checks (pyproject.toml); `ruff format .` fixes the format
	ruff check --quiet .
	ruff format --check --quiet .

# FULL=1: the long benchmarks on params.yaml itself (an hour or more), not in quick mode (docs/performance.md);
# stage times then force-rerun every stage of this project, so it warns and waits 10 s for a Ctrl-C first.
bench: setup  ## every benchmark (quick mode), then one table of their figures; JSON in benchmarks/results/quick/
	python benchmarks/bench.py $(if $(FULL),--full)

# The serve tests start a real PostgreSQL server and drive Debian's Chromium; without them they are skipped.
test-tools:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing$$missing for the tests (Debian packages)..."; \
	    $(call apt_get,$$missing) || echo "augflow: could not install$$missing; the tests that need them will be skipped."; \
	  else \
	    echo "augflow: run 'sudo apt-get install$$missing' to run the browser and PostgreSQL tests; they are skipped without them."; \
	  fi; \
	fi

setup: $(VENV)/.installed dataset

# The virtual environment, trusted only once its pip works: a .venv whose pip does not (a
# `python3 -m venv` that failed midway, a Python since removed) is removed and made again.
# Debian's python3 makes one only with python3-venv (its ensurepip), installed when root.
define make_venv
@if ! $(PYTHON) -m pip --version >/dev/null 2>&1; then \
  rm -rf $(VENV); need=""; \
  if ! command -v python3 >/dev/null; then need="python3 python3-venv"; why="python3 is not installed"; \
  elif ! python3 -c 'import ensurepip' >/dev/null 2>&1; then need="python3-venv"; why="python3 cannot create a virtual environment"; fi; \
  if [ -n "$$need" ]; then \
    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
      echo "Installing $$need (Debian packages) for the virtual environment..."; \
      $(call apt_get,$$need) || { echo "augflow: could not install $$need with apt-get: install it by hand, then make again."; exit 1; }; \
    else \
      echo "augflow: $$why: run 'sudo apt-get install $$need', then make again."; exit 1; \
    fi; \
  fi; \
  python3 -m venv $(VENV) && $(PYTHON) -m pip --version >/dev/null \
    || { rm -rf $(VENV); echo "augflow: 'python3 -m venv $(VENV)' did not make a virtual environment with a working pip (see above): fix that, then make again."; exit 1; }; \
fi
endef

venv:  ## only the virtual environment in .venv, with pip, no packages yet (setup's first step)
	$(make_venv)

$(VENV)/.installed: requirements.lock
	$(make_venv)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PYTHON) requirements.lock
	touch $@

# With the default ingest.source, Fashion-MNIST's IDX files must be there; the Debian
# package provides them where it can be installed. Any other source is checked by ingest.
dataset: $(VENV)/.installed
	@folder=$$(python -c 'from tasks.common.errors import run_cli; from tasks.common.params import load_params; run_cli(lambda: print(load_params().ingest.source))') || exit 2; \
	if [ "$$folder" = /usr/share/datasets/fashion-mnist ] && [ ! -f "$$folder/train-images-idx3-ubyte.gz" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."; \
	    $(call apt_get,dataset-fashion-mnist) \
	      || { echo "augflow: could not install dataset-fashion-mnist with apt-get; install it by hand or point ingest.source at your own images."; exit 1; }; \
	  else \
	    echo "augflow: Fashion-MNIST is not in $$folder: run 'sudo apt-get install dataset-fashion-mnist', or set ingest.source in params.yaml to your own images."; \
	    exit 1; \
	  fi; \
	fi

lock: $(VENV)/.installed  ## re-resolve requirements.in into requirements.lock
	$(VENV)/bin/uv pip compile --quiet requirements.in -o requirements.lock \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes

clean:  ## remove the environment and every generated output (DVC's cache stays)
	rm -rf $(VENV) data models reports
