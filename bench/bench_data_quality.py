"""How fast $data-quality answers over a million records' quality facts (docs/data-quality.md).

    .venv/bin/python bench/bench_data_quality.py [--n 1000000] [--store sqlite|mongomock]   # make bench-data-quality

The facts are filled directly through the store's quality API (Transaction.put_quality_row, in
transactions of 10,000), not by writing a million resources: the answer reads only the counters, which
is what is measured. The rows are shaped like real ones: 20 custodians (one none), 12 resource types,
a conformance split, failing rules from a pool of 40 and code systems from a pool of 15 per record,
a quarter lacking a UHID-bearing subject. Prints the fill rate, the counters held, then the answer
time (p50 and max of 7 calls through the full HTTP stack, authorization off) of the JSON answer, the
HTML page and a one-custodian answer.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fhirserver import create_app  # noqa: E402
from fhirserver.config import Settings  # noqa: E402

TYPES = ["Observation", "Condition", "Encounter", "Procedure", "MedicationRequest", "DiagnosticReport",
         "Immunization", "AllergyIntolerance", "CarePlan", "Claim", "DocumentReference", "ServiceRequest"]
CUSTODIANS = [""] + [f"Organization/hosp-{i}" for i in range(19)]
RULES = ([f"binding:http://hl7.org/fhir/ValueSet/vs-{i}" for i in range(15)] + [f"invariant:inv-{i}" for i in range(15)]
         + [f"cardinality:Observation.element{i}" for i in range(10)])
SYSTEMS = ["http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org", "http://hl7.org/fhir/sid/icd-10"] + \
          [f"http://terminology.hl7.org/CodeSystem/table-{i}" for i in range(11)]
BATCH = 10_000


def row(rnd: random.Random, rtype: str) -> dict:
    state = rnd.choices(["conforms", "not-conforming", "unchecked"], (5, 2, 3))[0]
    dims = [["total", ""], ["conformance", state]]
    if state == "not-conforming":
        dims += [["rule", r] for r in rnd.sample(RULES, rnd.randint(1, 3))]
    dims += [["system", s] for s in rnd.sample(SYSTEMS, rnd.randint(1, 3))]
    if rnd.random() < 0.25:
        dims.append(["no-uhid-subject", ""])
    return {"c": rnd.choice(CUSTODIANS), "t": rtype, "v": 1, "dims": dims, "subjects": [f"p{rnd.randint(1, 50_000)}"]}


def fill(store, n: int) -> float:
    rnd, started, done = random.Random(20), time.perf_counter(), 0
    while done < n:
        with store.transaction() as tx:
            for i in range(done, min(n, done + BATCH)):
                rtype = TYPES[i % len(TYPES)]
                tx.put_quality_row(rtype, f"r{i}", row(rnd, rtype))
        done = min(n, done + BATCH)
        print(f"\r{done} facts rows filled", end="", flush=True)
    print()
    return n / (time.perf_counter() - started)


def timed(client, url: str, headers=None, reps: int = 7) -> tuple[float, float, int]:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        r = client.get(url, headers=headers or {})
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return statistics.median(times), max(times), len(r.get_data())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "mongomock"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db" if args.store == "sqlite" else "mongomock://localhost/medport_bench_quality"
        app = create_app(Settings(store=url, base_url="http://bench.test/fhir", auth="off", sqlite_synchronous="NORMAL",
                                  audit_access="off"))
        store = app.config["MEDPORT"].store
        rate = fill(store, args.n)
        counters = len(store.quality_counts())
        print(f"store: {args.store}; {args.n:,} facts rows filled at {rate:,.0f} rows/s; {counters:,} counters")
        client = app.test_client()
        for label, url, headers in (("JSON, every custodian and type", "/fhir/$data-quality", None),
                                    ("HTML page", "/fhir/$data-quality", {"Accept": "text/html"}),
                                    ("JSON, one custodian", "/fhir/$data-quality?custodian=Organization/hosp-3", None)):
            p50, worst, size = timed(client, url, headers)
            print(f"$data-quality {label:32s} p50 {p50:7.1f} ms   max {worst:7.1f} ms   ({size:,} bytes)")


if __name__ == "__main__":
    main()
