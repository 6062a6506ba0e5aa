# Gridwhistle: `make demo` runs the main job, `make test` runs the tests.
# Both create the virtualenv in .venv on first use (Python 3.11+ needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gridwhistle replay

# the tests marked slow run too with GRIDWHISTLE_SLOW=1 (as .ci/run sets)
test: $(STAMP)
	$(BIN)/python -m pytest $(if $(GRIDWHISTLE_SLOW),,-m "not slow")

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: $(STAMP)
	$(BIN)/python -m adapters.diagrams docs/diagrams
	$(BIN)/gridwhistle schema --output workflows/schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache gridwhistle-replay.sqlite*
