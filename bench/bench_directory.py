#!/usr/bin/env python
"""Directory benchmark: latency of "nearest first" searches on a city of 10,000 Locations.

A directory of N Locations (default 10,000: hospitals, pharmacies, laboratories, blood banks; random
positions within ~30 km of Pune) and one HealthcareService per five Locations is generated and loaded
straight into a fresh SqliteStore through the store's transaction API (as bench_search.py's grow():
index rows extracted here, no HTTP), then the store's planner statistics are refreshed (what a running
server has). Each query runs in-process through the whole app (Flask test client: parameter parsing,
SQL, distance sort, Bundle rendering; no network hop), around random points of the city:

    Location?near=[lat]|[long]|5|km&_sort=near&_count=10
    Location?type=PHARM&near=[lat]|[long]|5|km&_sort=near&_count=10
    Location?type=[facility-type]|blood-bank&near=[lat]|[long]|10|km&_sort=near&_count=1
    HealthcareService?location.near=[lat]|[long]|5|km&_count=10
    HealthcareService?location.near=[lat]|[long]|5|km&service-type=[blood test]&_count=10

    .venv/bin/python bench/bench_directory.py                      # ~1 minute
    .venv/bin/python bench/bench_directory.py --locations 50000 --reps 100

Prints figures only (p50, p95, matches per query); nothing here asserts on speed. Goal: p50 < 50 ms.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BASE = "http://127.0.0.1:8080/fhir"
CENTRE = (18.5204, 73.8567)          # Pune
RADIUS_KM = 30.0
GOAL_MS = 50.0
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
FACILITY = "https://medport.health/fhir/CodeSystem/facility-type"
SNOMED = "http://snomed.info/sct"
KINDS = [((ROLE, "PHARM"), 0.45), ((ROLE, "HOSP"), 0.2), ((ROLE, "HLAB"), 0.1), ((ROLE, "OUTLAB"), 0.15),
         ((FACILITY, "blood-bank"), 0.02), ((ROLE, "AMB"), 0.08)]
SERVICES = [("396550006", "Blood test"), ("11429006", "Consultation"), ("33879002", "Vaccination")]
BATCH = 2000


def point(rng: random.Random) -> tuple[float, float]:
    """A uniformly random point within RADIUS_KM of the centre."""
    r = RADIUS_KM * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    lat = CENTRE[0] + (r * math.cos(a)) / 111.32
    long = CENTRE[1] + (r * math.sin(a)) / (111.32 * math.cos(math.radians(CENTRE[0])))
    return round(lat, 6), round(long, 6)


def directory(n: int, rng: random.Random):
    """Locations and HealthcareServices of the city, as resources."""
    kinds, weights = zip(*KINDS)
    for i in range(n):
        (system, code), = rng.choices(kinds, weights)
        lat, long = point(rng)
        yield {"resourceType": "Location", "id": f"loc-{i}", "status": "active", "name": f"{code} {i}",
               "type": [{"coding": [{"system": system, "code": code}]}],
               "position": {"latitude": lat, "longitude": long},
               "address": {"city": "Pune", "country": "IN"},
               "hoursOfOperation": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat"],
                                     "openingTime": "08:00:00", "closingTime": "20:00:00"}]}
        if i % 5 == 0:
            sct, display = SERVICES[(i // 5) % len(SERVICES)]
            yield {"resourceType": "HealthcareService", "id": f"svc-{i}", "active": True, "name": f"{display} {i}",
                   "location": [{"reference": f"Location/loc-{i}"}],
                   "type": [{"coding": [{"system": SNOMED, "code": sct, "display": display}]}]}


def load(store, resources) -> tuple[int, float]:
    from fhirserver import jsonio
    from fhirserver.interactions.common import now_instant
    from fhirserver.search.extract import extract
    from fhirserver.storage.types import Write

    started, count, batch = time.perf_counter(), 0, []

    def flush():
        with store.transaction() as tx:
            for w in batch:
                tx.write(w)
        batch.clear()

    for res in resources:
        stamp = now_instant()
        res["meta"] = {"versionId": "1", "lastUpdated": stamp}
        batch.append(Write(res["resourceType"], res["id"], 1, stamp, "POST", jsonio.dumps(res), extract(res, BASE)))
        count += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return count, time.perf_counter() - started


def queries():
    near = "{lat}|{long}|5|km"
    return [
        ("Location near, 5 km, nearest 10", "Location?near=" + near + "&_sort=near&_count=10"),
        ("pharmacies near, 5 km, nearest 10", "Location?type=PHARM&near=" + near + "&_sort=near&_count=10"),
        ("nearest blood bank, 10 km", f"Location?type={FACILITY}|blood-bank&near={{lat}}|{{long}}|10|km"
                                      "&_sort=near&_count=1"),
        ("HealthcareService location.near, 5 km", "HealthcareService?location.near=" + near + "&_count=10"),
        ("blood tests location.near, 5 km", "HealthcareService?location.near=" + near
                                            + f"&service-type={SNOMED}|396550006&_count=10"),
    ]


def measure(client, template: str, points, warmup: int = 3) -> tuple[list[float], list[int]]:
    times, matches = [], []
    for i, (lat, long) in enumerate(points):
        url = "/fhir/" + template.format(lat=lat, long=long)
        t0 = time.perf_counter()
        r = client.get(url)
        body = r.get_data()
        dt = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"GET {url} -> {r.status_code}: {body[:300]!r}")
        if i >= warmup:
            times.append(dt * 1000)
            matches.append(json.loads(body).get("total", -1))
    return times, matches


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--locations", type=int, default=10000, help="Locations in the directory, default 10,000")
    p.add_argument("--reps", type=int, default=50, help="random points per query, default 50")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)

    from fhirserver import create_app
    from fhirserver.config import Settings
    from fhirserver.context import initialize
    from fhirserver.storage import open_store

    rng = random.Random(args.seed)
    tmpdir = tempfile.mkdtemp(prefix="medport-bench-directory-")
    try:
        settings = Settings(store=f"sqlite:///{os.path.join(tmpdir, 'directory.db')}", base_url=BASE,
                            sqlite_synchronous="NORMAL", log_level="WARNING", auth="off")
        store = open_store(settings)
        initialize(settings, store)
        n, seconds = load(store, directory(args.locations, rng))
        store.analyze()
        print(f"directory: {args.locations:,} Locations + {n - args.locations:,} HealthcareServices loaded in "
              f"{seconds:.1f} s, within {RADIUS_KM:.0f} km of {CENTRE[0]}, {CENTRE[1]}; "
              f"Python {platform.python_version()}, SQLite store, in-process (Flask test client)")
        app = create_app(settings, store)
        logging.getLogger("medport.access").setLevel(logging.WARNING)
        client = app.test_client()
        points = [point(rng) for _ in range(args.reps + 3)]
        print(f"\n{'query':42} {'p50 ms':>8} {'p95 ms':>8} {'matches (median)':>17}")
        worst = 0.0
        for name, template in queries():
            times, matches = measure(client, template, points)
            p50 = statistics.median(times)
            worst = max(worst, p50)
            print(f"{name:42} {p50:8.1f} {pct(times, 95):8.1f} {statistics.median(matches):17,.0f}")
        print(f"\ngoal: p50 < {GOAL_MS:.0f} ms for every query: {'met' if worst < GOAL_MS else 'NOT met'} "
              f"(slowest p50 {worst:.1f} ms)")
        store.close()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
