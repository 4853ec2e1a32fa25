# Med-Port: `make run` starts the server on the embedded store; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test bench bench-search bench-ingest bench-validation lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(TESTSTAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	mkdir -p var
	$(BIN)/medport serve --demo

test: $(TESTSTAMP)
	$(BIN)/python -m pytest -q

bench: $(TESTSTAMP)
	$(BIN)/python bench/bench_rest.py

bench-search: $(STAMP)      # SIZES=10k,100k,1M to go to a million (about 10 minutes of loading)
	$(BIN)/python bench/bench_search.py --sizes $(or $(SIZES),10k,100k) --stats store

bench-ingest: $(TESTSTAMP)
	$(BIN)/python bench/bench_ingest.py

bench-validation: $(STAMP)
	$(BIN)/python bench/bench_validation.py

lint: $(TESTSTAMP)
	$(BIN)/ruff check fhirserver tests bench

clean:
	rm -rf $(VENV) var build *.egg-info
