"""How fast the audit log integrates and `medport audit verify` recomputes it (docs/audit.md, Verify speed).

    .venv/bin/python bench/bench_audit_verify.py [--entries 1000000] [--store sqlite:///path.db]
    make bench-audit-verify ENTRIES=100000

1. Writes N AuditEvents straight through the store (the fast path, not HTTP): bodies built as
   fhirserver/audit.py builds them (id, meta.versionId, meta.lastUpdated stamped as
   interactions.common.store_new_version does, index rows from search.extract), 2000 per store
   transaction (`Store.transaction()` + `Transaction.write`).
2. Integrates them with fhirserver.audit_log.log.integrate (batches of 1000, checkpoints): with
   --round R (default 10000), after every R events written, as the server's integrator follows the
   writes; --round 0 integrates the whole backlog in one call after all writes.
3. Times fhirserver.audit_log.verify.verify over the whole log.

Prints entries/s for each step. The store is a fresh temporary SQLite file unless --store names one.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fhirserver import jsonio  # noqa: E402
from fhirserver.audit import DCM, ENTITY_TYPE  # noqa: E402
from fhirserver.audit_log import log as audit_log  # noqa: E402
from fhirserver.audit_log.verify import verify  # noqa: E402
from fhirserver.config import Settings  # noqa: E402
from fhirserver.interactions.common import now_instant, restamp  # noqa: E402
from fhirserver.search.extract import extract  # noqa: E402
from fhirserver.storage import open_store  # noqa: E402
from fhirserver.storage.base import Write  # noqa: E402

BASE = "http://bench.test/fhir"
PER_COMMIT = 2000


def event(i: int) -> dict:
    """An AuditEvent shaped like fhirserver.audit.record's (a read of a Patient by a practitioner)."""
    return {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110110", "display": "Patient Record"},
        "subtype": [{"system": f"{BASE}/CodeSystem/medport-audit", "code": "read", "display": "Read"}],
        "action": "R",
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "outcome": "0",
        "agent": [{"requestor": True, "who": {"reference": f"Practitioner/d{i % 50}"}, "altId": f"user{i % 50}",
                   "name": "client bench"}],
        "source": {"observer": {"display": "Med-Port"}, "site": BASE},
        "entity": [{"what": {"reference": f"Patient/p{i % 5000}"},
                    "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                    "description": f"read of Patient/p{i % 5000}"}],
    }


def write_events(store, n: int, done: int = 0) -> float:
    started = time.perf_counter()
    n += done
    while done < n:
        with store.transaction() as tx:
            for i in range(done, min(n, done + PER_COMMIT)):
                resource = event(i)
                resource["id"] = id_ = str(uuid.uuid4())
                stamp = now_instant()
                resource["meta"] = {"versionId": "1", "lastUpdated": stamp}
                rows = restamp(extract(resource, BASE), "AuditEvent", stamp)
                tx.write(Write("AuditEvent", id_, 1, stamp, "POST", jsonio.dumps(resource), rows))
        done = min(n, done + PER_COMMIT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--round", type=int, default=10000, help="integrate after every this many writes "
                                                                  "(0: once, after all)")
    parser.add_argument("--store", help="a store URL (default: a fresh temporary SQLite file)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        settings = Settings(store=args.store or f"sqlite:///{d}/audit.db", base_url=BASE, auth="off",
                            sqlite_synchronous="NORMAL", log_level="WARNING")
        store = open_store(settings)
        n = args.entries
        print(f"entries = {n}, store = {settings.store}")
        step = args.round or n
        writing = integrating = 0.0
        appended = 0
        for done in range(0, n, step):
            writing += write_events(store, min(step, n - done), done)
            started = time.perf_counter()
            appended += audit_log.integrate(store, settings)
            integrating += time.perf_counter() - started
            print(f"\r  written and integrated {appended}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        print(f"write (store transactions of {PER_COMMIT})   {n / writing:10.0f} entries/s   {writing:8.1f} s")
        print(f"integrate (rounds of {step})        {appended / integrating:10.0f} entries/s   {integrating:8.1f} s")
        report = verify(store)
        status = "OK" if report.ok else f"FAILED at {report.first.index}: {report.first.kind}"
        print(f"verify ({status}, {report.size} entries)    {report.size / report.seconds:10.0f} entries/s"
              f"   {report.seconds:8.1f} s")
        store.close()


if __name__ == "__main__":
    main()
