# Two commands for a newcomer: `make run` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint unit bench system-deps clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/kubebot serve $(if $(CONFIG),--config $(CONFIG),)

# Real servers and a real browser the tests start on 127.0.0.1: Debian's Prometheus and
# Alertmanager, PostgreSQL (its binaries live in /usr/lib/postgresql/<version>/bin, off PATH),
# wrk for the benchmarks, headless Chromium for the dashboard test.
SYSTEM_PACKAGES := prometheus prometheus-alertmanager postgresql wrk chromium chromium-driver
system-deps:
	@command -v prometheus-alertmanager >/dev/null && command -v promtool >/dev/null && command -v wrk >/dev/null \
	  && command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP) system-deps lint
	$(BIN)/pytest -q

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data build *.egg-info
