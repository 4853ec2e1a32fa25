# Med-Port: `make run` starts the server on the embedded store; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test fuzz test-mongo bench bench-read bench-memory bench-export bench-search bench-mongo bench-ingest bench-validation bench-uhid lint clean

# `make bench-search SIZES=10k,100k,1M`: a plain variable, since $(or a,b,c) would split at the commas
SIZES ?= 10k,100k

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

fuzz: $(TESTSTAMP)          # tests/fuzz with a long budget and fresh random examples (about 10 minutes; `make test` runs a short, fixed one)
	MEDPORT_FUZZ_EXAMPLES=$(or $(EXAMPLES),1200) MEDPORT_FUZZ_SEED=$(or $(SEED),random) $(BIN)/python -m pytest -q tests/fuzz

test-mongo: $(TESTSTAMP)    # MONGODB_URI=mongodb://host/?replicaSet=rs0: the same suites on a real server
	@test -n "$(MONGODB_URI)" || (echo "usage: make test-mongo MONGODB_URI=mongodb://host:27017/?replicaSet=rs0"; exit 2)
	MEDPORT_TEST_STORES=mongo MEDPORT_TEST_MONGODB_URI='$(MONGODB_URI)' $(BIN)/python -m pytest -q

bench: $(TESTSTAMP)           # REST throughput, then the price of the audit trail (audited vs not, side by side)
	$(BIN)/python bench/bench_rest.py
	$(BIN)/python bench/bench_audit.py

bench-read: $(TESTSTAMP)     # GET [type]/[id] against a bare Flask app serving the same bytes, same gunicorn (wrk)
	$(BIN)/python bench/bench_read.py

bench-memory: $(STAMP)      # private memory of each idle worker (validators shared from the master)
	$(BIN)/python bench/bench_memory.py

bench-search: $(STAMP)      # SIZES=10k,100k,1M to go to a million (about 10 minutes of loading)
	$(BIN)/python bench/bench_search.py --sizes $(SIZES) --stats store

bench-mongo: $(TESTSTAMP)   # the search mix on MongoDB (MONGO_SIZES=5k): MONGODB_URI=mongodb://host/medport_bench, else mongomock
	$(BIN)/python bench/bench_search.py --sizes $(or $(MONGO_SIZES),5k) --stats store --patients 10 --reps 2 \
		--mongo '$(or $(MONGODB_URI),mongomock://localhost/medport_bench)'

bench-ingest: $(TESTSTAMP)
	$(BIN)/python bench/bench_ingest.py

bench-export: $(STAMP)      # system $export at 10k, 100k resources (SIZES=10k,100k,1M): resources/s, peak RSS
	$(BIN)/python bench/bench_export.py --sizes $(SIZES)

bench-validation: $(STAMP)   # structural validation of the 779 official examples, then profile validation p50/p95 (Synthea blood pressure vs US Core; goal p50 < 1 ms)
	$(BIN)/python bench/bench_validation.py

bench-uhid: $(STAMP)        # the price of UHID issuance; health cards issued and verified per second
	$(BIN)/python bench/bench_uhid.py

.PHONY: bench-data-quality
bench-data-quality: $(STAMP)   # $data-quality answer time over 1M records' quality facts (filled through the store's quality API)
	$(BIN)/python bench/bench_data_quality.py

bench-directory: $(STAMP)   # near-search latency p50/p95 on a directory of 10,000 Locations (goal p50 < 50 ms)
	$(BIN)/python bench/bench_directory.py

.PHONY: bench-subscriptions
bench-subscriptions: $(STAMP)   # the event hook's cost per write, outbox drain rate, commit-to-delivery latency
	$(BIN)/python bench/bench_subscriptions.py

.PHONY: bench-audit-verify
bench-audit-verify: $(STAMP)   # ENTRIES=100000 for a quick run; integration and verify entries/s (docs/audit.md)
	$(BIN)/python bench/bench_audit_verify.py --entries $(or $(ENTRIES),1000000)

lint: $(TESTSTAMP)
	$(BIN)/ruff check fhirserver tests bench

clean:
	rm -rf $(VENV) var build *.egg-info
