# `make demo` and `make test` set everything up on a fresh machine (a Python 3.11 venv with the
# pinned stack from requirements.lock) and then do their job. The install is stamped with the
# hash of the lock file and setup.py, so a second call does not reinstall.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-$(shell cat $(LOCK) setup.py | sha256sum | cut -c1-16)
SCALE  ?= full
DEMO_DATA ?= demo_data

# TensorFlow's environment (TF_USE_LEGACY_KERAS, ...) is set by core/env.py, which every entry
# point imports first. Only what Python itself reads at start-up is set here: no __pycache__
# folders in the checkout.
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo demo-data test test-unit test-e2e lint image clean

install: $(STAMP)

$(STAMP): $(LOCK) setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned stack into $(VENV) (first time only, about 3 minutes)..."
	@rm -f $(VENV)/.installed-*
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python -r $(LOCK)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e '.[test]'
	@touch $@

$(DEMO_DATA)/.complete-$(SCALE): | $(STAMP)
	$(BIN)/polyvit make-demo-data $(DEMO_DATA) --scale $(SCALE)
	@touch $@

demo-data: $(DEMO_DATA)/.complete-$(SCALE)

# Runs the pipeline on the demo media, then serves the pushed model and asks it about one demo
# file per modality through `polyvit serve` / `polyvit predict`.
demo: install demo-data
	$(BIN)/polyvit run --config configs/demo.yaml --set data_root=$(DEMO_DATA)
	$(BIN)/python -m pipeline.serve_demo --config configs/demo.yaml --data-root $(DEMO_DATA)

# The same checks as .pre-commit-config.yaml: lint rules, formatting, types (pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest -m "not e2e"

# pytest exits 5 when a marker selects no test; that is not a failure of the suite.
test-e2e: install
	$(BIN)/pytest -m e2e || test $$? -eq 5

test: lint test-unit test-e2e

image:
	docker build -t polyvit:latest .

clean:
	rm -rf $(VENV) runs $(DEMO_DATA) .pytest_cache
