#!/usr/bin/env python
"""Governance benchmark: the price of the organisation policy (docs/governance.md).

The same query mix as bench_search.py (the Synthea corpus grown to --size resources in SQLite) runs
through the whole app with authorization on, under two tokens of the same scopes (system/*.rs):

- the exchange's own client (no organisation: no policy), and
- a hospital's client (organisation H): it holds nothing of the corpus, and every sampled patient
  has an active Consent permitting H, so it sees exactly the sampled patients' records, through the
  consent subquery that every query of its token is ANDed with.

Reads (GET Observation/[id] of a consented patient) are timed too. It prints p50/p95 per query for
both tokens and the ratio of the p50s (the goal: within 1.5x), and with --explain the SQLite plan of
each query under the hospital token, flagging any full scan (every query should be index-backed).

    .venv/bin/python bench/bench_governance.py --size 100k           # a few minutes to load
    .venv/bin/python bench/bench_governance.py --size 10k --explain

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_search as bs  # noqa: E402  (the corpus and the mix are shared)

HOSPITAL = "Organization/bench-hospital"
RT = "http://hl7.org/fhir/resource-types"


def open_app(db: str):
    from fhirserver import create_app
    from fhirserver.config import Settings
    from fhirserver.storage.sqlite import SqliteStore
    settings = Settings(store=f"sqlite:///{db}", base_url=bs.BASE, sqlite_synchronous="NORMAL",
                        log_level="WARNING", auth="on")
    store = SqliteStore(db, synchronous="NORMAL")
    app = create_app(settings, store)
    logging.getLogger("medport.access").setLevel(logging.WARNING)
    return app, store, app.test_client()


def mint(store, scope: str, **claims) -> str:
    from fhirserver.smart_auth import tokens
    from fhirserver.smart_auth.keys import SigningKeys
    token, _ = tokens.issue(SigningKeys(store), bs.BASE, bs.BASE, "bench", "bench", scope, lifetime_s=3600,
                            **claims)
    return token


def consent_for(patient: str) -> dict:
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient}"},
            "provision": {"type": "permit", "actor": [{"role": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                "reference": {"reference": HOSPITAL}}]}}


def timed(client, url: str, token: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = client.get(url, headers={"Authorization": f"Bearer {token}"})
    data = r.get_data()
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"GET {url} -> {r.status_code}: {data[:300]!r}")
    return dt, json.loads(data)


def pct(xs, p) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000 if xs else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="100k", help="corpus size, default 100k")
    p.add_argument("--db", help="keep the corpus in this file (reused); default a temporary file")
    p.add_argument("--patients", type=int, default=30, help="consented patients sampled, default 30")
    p.add_argument("--reps", type=int, default=3, help="repetitions per patient, default 3")
    p.add_argument("--explain", action="store_true", help="print the SQLite plan of each query (hospital token)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)
    tmpdir = None
    db = args.db
    if not db:
        tmpdir = tempfile.mkdtemp(prefix="medport-bench-governance-")
        db = os.path.join(tmpdir, "corpus.db")
    entries, types = bs.read_templates(bs.BUNDLE_DIR)
    common, rare = bs.template_codes(entries)
    mix = [m for m in bs.build_mix(common, rare)]
    pool = multiprocessing.get_context("fork").Pool(2, initializer=bs._init_worker, initargs=(bs.BUNDLE_DIR, bs.BASE))
    try:
        bs.grow(db, bs.parse_size(args.size), pool, entries, types)
        pool.close()
        size, _ = bs.count_resources(db)
        fx = bs.Fixture(db, args.patients, args.seed)
        app, store, client = open_app(db)
        from fhirserver.interactions import create as create_i
        for patient in fx.patients:                     # every sampled patient shares with the hospital
            create_i.create(app.config["MEDPORT"], "Consent", consent_for(patient["id"]))   # as the server
        store.analyze()
        tokens = {"exchange (no policy)": mint(store, "system/*.rs"),
                  "hospital (consent policy)": mint(store, "system/*.rs", organization=HOSPITAL)}
        print(f"== {size:,} resources; {len(fx.patients)} patients consented to {HOSPITAL} ==")
        rows = []
        checks = []
        for name, build in mix + [("read Observation/[id]", None)]:
            times = {label: [] for label in tokens}
            totals = {label: [] for label in tokens}
            for i, patient in enumerate(fx.patients):
                if build is None:
                    _dt, found = timed(client, bs.q("Observation", [("subject", f"Patient/{patient['id']}"),
                                                                    ("_count", "1")]), tokens["exchange (no policy)"])
                    url = f"/fhir/Observation/{found['entry'][0]['resource']['id']}"
                else:
                    url = build(patient, i)
                for _ in range(args.reps):
                    for label, token in tokens.items():
                        dt, bundle = timed(client, url, token)
                        times[label].append(dt)
                        totals[label].append(bundle.get("total", 1))
            p50s = {label: pct(t, 50) for label, t in times.items()}
            ratio = p50s["hospital (consent policy)"] / p50s["exchange (no policy)"]
            rows.append((name, p50s, {label: pct(t, 95) for label, t in times.items()}, ratio))
            same = totals["hospital (consent policy)"] == totals["exchange (no policy)"]
            checks.append((name, same))
        print(f"{'query':42} {'exchange p50/p95 ms':>22} {'hospital p50/p95 ms':>22} {'ratio p50':>10}")
        for name, p50s, p95s, ratio in rows:
            e, h = "exchange (no policy)", "hospital (consent policy)"
            print(f"{name:42} {p50s[e]:10.2f}/{p95s[e]:<10.2f} {p50s[h]:10.2f}/{p95s[h]:<10.2f} {ratio:9.2f}x")
        for name, same in checks:
            if not same and not name.startswith("Patient?name") and "_has" not in name and "_sort" not in name:
                print(f"note: {name}: the hospital's totals differ from the exchange's for consented patients")
        if args.explain:
            explain(app, store, client, mix, fx, tokens["hospital (consent policy)"])
        print(f"({os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
              f"median of {args.reps} x {len(fx.patients)} runs per query; one run, ratios only)")
        store.close()
    finally:
        pool.terminate()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


def explain(app, store, client, mix, fx, token) -> None:
    """The plan of every statement each query runs under the hospital token; full scans flagged."""
    real = store._conn()
    rec = bs.Recorder(real)
    for name, build in mix:
        rec.statements = []
        store._local.conn = rec
        try:
            timed(client, build(fx.patients[0], 0), token)
        finally:
            store._local.conn = real
        scans = []
        print(f"\n-- {name}")
        for sql, args in rec.statements:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            plan = bs.plan_text(real, sql, args)
            scans += [line.strip() for line in plan.splitlines()     # a table read whole (not a subquery's rows)
                      if line.strip().startswith("SCAN") and "USING" not in line and "CONSTANT" not in line
                      and "(subquery" not in line]
            print(plan)
        print(f"   full scans: {scans or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
