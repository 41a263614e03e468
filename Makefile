# Entry points for working on the lab. `make up` is all a student needs.
SHELL := bash
BIN := .venv/bin

.PHONY: setup lock up down status test lint fmt rules bench

# The venv, installed exactly from uv.lock, and the stack's binaries.
setup:
	@scripts/setup.sh

# Rewrite uv.lock after a change to pyproject.toml's dependencies; versions already locked stay
# unless pyproject.toml rules them out (`scripts/uv.sh lock --upgrade-package NAME` moves one).
lock:
	@scripts/uv.sh lock

# The native stack with Locust traffic; `make down` stops it.
up: setup
	$(BIN)/obslab up --load

down:
	$(BIN)/obslab down

status:
	$(BIN)/obslab status

# Every suite: unit, rules (promtool) and live (a real stack on ports shifted by 20000).
test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate every file rendered from alerts/rules.py and alerts/thresholds.yaml: the native
# rules, compose's Prometheus and Alertmanager configs, and deploy/k8s/.
rules: setup
	$(BIN)/python -m alerts.rules
	$(BIN)/python -m obslab.compose
	$(BIN)/python -m obslab.k8s

# Benchmarks (drift detection quality, ...): one table, also saved under .obslab/bench/.
bench: setup
	$(BIN)/python -m bench
