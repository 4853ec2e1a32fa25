#!/usr/bin/env python
"""REST benchmark: create and read throughput and latency over HTTP vs. the store alone.

HTTP: `medport serve` runs as a subprocess (fresh temp store, --workers N) and
--threads client threads, each with its own requests.Session, POST then GET
--n resources. Store: the same operations in this process against a fresh
SqliteStore (Transaction.write / Store.read) with pre-serialised bodies and
pre-computed index rows: no HTTP, no parsing, no validation. The ratio between
the two is what HTTP, JSON handling and validation cost.

Resources are the official R4 Patient and Observation examples
(tests/data/hl7-examples/) with their ids stripped.

    .venv/bin/python bench/bench_rest.py [--n 2000] [--threads 8] [--workers 2] [--auth on|off]

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import uuid

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_DIRS = [os.path.join(REPO, "tests", "data", "hl7-examples"),
                "/work/shared/testdata/hl7-examples/r4-core-examples-4.0.1"]
from served import Server, percentile_ms, run_jobs  # noqa: E402 (bench/ is on sys.path when run as a script)

FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


# -- data ------------------------------------------------------------------------------------------

def load_examples() -> list[dict]:
    """Patient and Observation examples, ids stripped, interleaved (Patient, Observation, ...)."""
    for d in EXAMPLE_DIRS:
        patients = sorted(glob.glob(os.path.join(d, "Patient-*.json")))
        observations = sorted(glob.glob(os.path.join(d, "Observation-*.json")))
        if patients and observations:
            break
    else:
        sys.exit(f"no Patient/Observation examples found in {EXAMPLE_DIRS}")
    out = {"Patient": [], "Observation": []}
    for path in patients + observations:
        with open(path, "rb") as f:
            resource = json.load(f)
        if resource.get("resourceType") in out:
            resource.pop("id", None)
            out[resource["resourceType"]].append(resource)
    mixed = [r for pair in itertools.zip_longest(out["Patient"], out["Observation"]) for r in pair if r]
    print(f"examples: {len(out['Patient'])} Patient + {len(out['Observation'])} Observation from {d}")
    return mixed


# -- measurement -----------------------------------------------------------------------------------

class Stats:
    def __init__(self, name: str, path: str, threads: int):
        self.name, self.path, self.threads = name, path, threads
        self.latencies: list[float] = []
        self.wall = 0.0
        self.errors = 0

    @property
    def n(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.n / self.wall if self.wall else 0.0

    def pct(self, p: float) -> float:
        return percentile_ms(self.latencies, p)


def run_parallel(stats: Stats, jobs: list, work, make_state=lambda: None) -> Stats:
    """Run work(state, job) -> ok for every job on stats.threads threads."""
    stats.wall, stats.latencies, results = run_jobs(stats.threads, jobs, work, make_state)
    stats.errors = sum(1 for ok in results if not ok)
    return stats


# -- HTTP ------------------------------------------------------------------------------------------

def bench_http(bodies: list[tuple[str, bytes]], threads: int, workers: int, workdir: str, auth: str = "on"):
    server = Server(workdir, workers, auth=auth)
    auth_headers = server.headers()          # a bearer token when authorization is on
    headers = {**HEADERS, **auth_headers}
    try:
        # warm-up: every distinct example once per worker-ish (validators load lazily per process);
        # also drops any example the server refuses, so the timed runs measure successful creates only
        distinct = {body: rtype for rtype, body in bodies}
        accepted = set()

        def warm(session, job):
            rtype, body = job
            r = session.post(f"{server.base}/{rtype}", data=body, headers=headers, timeout=60)
            if r.status_code == 201:
                accepted.add(body)
                session.get(f"{server.base}/{rtype}/{r.json()['id']}", headers=headers, timeout=60)
            return True

        run_parallel(Stats("warm-up", "http", threads), [(t, b) for b, t in distinct.items()] * 2, warm,
                     requests.Session)
        refused = len(distinct) - len(accepted)
        if refused:
            print(f"note: the server refused {refused} of {len(distinct)} examples; they are left out")
        jobs = [(t, b) for t, b in bodies if b in accepted]

        created: list[tuple[str, str]] = []
        created_lock = threading.Lock()

        def create(session, job):
            rtype, body = job
            r = session.post(f"{server.base}/{rtype}", data=body,
                             headers={**headers, "Prefer": "return=minimal"}, timeout=60)
            if r.status_code != 201:
                return False
            rid = r.headers["Location"].split("/")[-3]
            with created_lock:
                created.append((rtype, rid))
            return True

        def read(session, job):
            rtype, rid = job
            r = session.get(f"{server.base}/{rtype}/{rid}", headers={"Accept": FHIR_JSON, **auth_headers},
                            timeout=60)
            return r.status_code == 200 and len(r.content) > 0

        c = run_parallel(Stats("create", "http", threads), jobs, create, requests.Session)
        r = run_parallel(Stats("read", "http", threads), list(created), read, requests.Session)
        return c, r
    finally:
        server.stop()


# -- store alone -----------------------------------------------------------------------------------

def bench_store(bodies: list[tuple[str, bytes]], workdir: str, threads: int):
    from fhirserver import jsonio
    from fhirserver.interactions.common import now_instant
    from fhirserver.search.extract import extract
    from fhirserver.storage.base import Write
    from fhirserver.storage.sqlite import SqliteStore

    store = SqliteStore(os.path.join(workdir, "store.db"))
    # pre-serialised: id and meta stamped, index rows extracted, all before the clock starts
    writes = []
    for rtype, body in bodies:
        resource = jsonio.loads(body)
        rid, stamp = str(uuid.uuid4()), now_instant()
        resource["id"] = rid
        resource["meta"] = {**(resource.get("meta") or {}), "versionId": "1", "lastUpdated": stamp}
        writes.append(Write(rtype, rid, 1, stamp, "POST", jsonio.dumps(resource), extract(resource)))

    def create(_state, w):
        with store.transaction() as tx:
            tx.write(w)
        return True

    def read(_state, w):
        v = store.read(w.type, w.id)
        return v is not None and v.body is not None

    c = run_parallel(Stats("create", "store", threads), writes, create)
    r = run_parallel(Stats("read", "store", threads), writes, read)
    store.close()
    return c, r


# -- report ----------------------------------------------------------------------------------------

def report(rows: list[Stats], args) -> None:
    print()
    print(f"{'operation':9} {'path':5} {'n':>6} {'threads':>7} {'resources/s':>12} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'errors':>6}")
    for s in rows:
        print(f"{s.name:9} {s.path:5} {s.n:6d} {s.threads:7d} {s.throughput:12.0f} {s.pct(50):8.2f} "
              f"{s.pct(99):8.2f} {s.errors:6d}")
    by = {(s.name, s.path): s for s in rows}
    print()
    for op in ("create", "read"):
        h, st = by[(op, "http")], by[(op, "store")]
        print(f"{op:6}: store alone is {st.throughput / h.throughput:5.1f}x the HTTP throughput; "
              f"HTTP p50 is {h.pct(50) / st.pct(50):5.1f}x the store's")
    print(f"\n(server: {args.workers} workers x 4 threads, authorization {args.auth}; HTTP clients: {args.threads} threads; "
          f"store alone: {args.store_threads} thread(s); SQLite synchronous=FULL; "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="resources to create (and read back), default 2000")
    p.add_argument("--threads", type=int, default=8, help="HTTP client threads, default 8")
    p.add_argument("--workers", type=int, default=2, help="server worker processes, default 2")
    p.add_argument("--auth", choices=("on", "off"), default="on",
                   help="serve with SMART authorization (a bearer token on every request), default on")
    p.add_argument("--store-threads", type=int, default=1,
                   help="threads for the in-process store run, default 1 (SQLite has one writer at a time)")
    args = p.parse_args(argv)

    examples = load_examples()
    bodies = [(r["resourceType"], json.dumps(r).encode()) for r in itertools.islice(itertools.cycle(examples), args.n)]
    print(f"{args.n} resources, mean body {statistics.mean(len(b) for _, b in bodies):.0f} bytes")
    workdir = tempfile.mkdtemp(prefix="medport-bench-")
    try:
        http_c, http_r = bench_http(bodies, args.threads, args.workers, workdir, args.auth)
        store_c, store_r = bench_store(bodies, workdir, args.store_threads)
        report([http_c, store_c, http_r, store_r], args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
