#!/usr/bin/env python
"""Scheduling benchmark (docs/scheduling.md): Appointment/$find latency on a large directory, and
booking throughput under contention over HTTP.

1. $find: a SQLite store with --locations Locations (spread over India, open 09:00-11:30 every day),
   one Schedule per Location (a Location and one of --locations/5 Practitioners as actors, one of 5
   service types and 10 specialties), and Slots generated through Schedule $generate-slots' code
   (fhirserver/scheduling/slots.py, 15 minutes each) until the store holds each of --sizes Slots. At
   each size it prints how long generating took and the p50/p95 of $find (in-process, the whole Flask
   app, authorization off) for: no criteria, a practitioner, a location, service type + specialty,
   `near` (10 km), each over a random week, and a combination no Schedule offers (the store then reads
   every Slot of the range: the worst case).
2. Contention: `medport serve --workers W` (authorization off), one Schedule with --contended Slots,
   --threads client threads each booking random Slots of it until every Slot is booked: bookings/s,
   409s/s and the latency of both.

    .venv/bin/python bench/bench_scheduling.py --sizes 100k                 # minutes
    .venv/bin/python bench/bench_scheduling.py --sizes 100k,1M             # about an hour to generate
    .venv/bin/python bench/bench_scheduling.py --skip-find --threads 20 --workers 4

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BASE = "http://bench.test/fhir"
SNOMED = "http://snomed.info/sct"
SERVICES = ["11429006", "33879002", "15220000", "183856001", "390906007"]
SPECIALTIES = ["394579002", "394582007", "394583002", "394584008", "394585009", "394586005", "394587001",
               "394589003", "394591006", "394592004"]
FIRST_DAY = datetime.date(2031, 3, 3)
SLOTS_PER_DAY = 10           # 09:00-11:30 in 15-minute slots: 100k Slots a day for 10,000 Locations
MINUTES = 15


def size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * {"k": 1000, "m": 1000000}[text[-1]]) if text[-1] in "km" else int(text)


def open_ctx(db: str):
    from fhirserver import create_app
    from fhirserver.config import Settings
    settings = Settings(store=f"sqlite:///{db}", base_url=BASE, sqlite_synchronous="NORMAL", log_level="WARNING",
                        auth="off", audit_access="off")
    app = create_app(settings)
    logging.getLogger("medport.access").setLevel(logging.WARNING)
    return app, app.config["MEDPORT"]


def seed_directory(ctx, locations: int, rng: random.Random) -> None:
    from fhirserver.interactions.common import prepare, store_new_version
    practitioners = max(1, locations // 5)
    batch = []

    def flush():
        with ctx.repo.transaction() as tx:
            for rtype, rid, resource in batch:
                store_new_version(tx, prepare(ctx, rtype, resource), rid, "POST", None)
        batch.clear()

    for p in range(practitioners):
        batch.append(("Practitioner", f"prac-{p}", {"resourceType": "Practitioner", "name": [{"family": f"Doctor {p}"}]}))
        if len(batch) >= 1000:
            flush()
    for n in range(locations):
        batch.append(("Location", f"loc-{n}", {
            "resourceType": "Location", "name": f"OPD {n}",
            "position": {"latitude": round(rng.uniform(8.0, 32.0), 5), "longitude": round(rng.uniform(68.0, 90.0), 5)},
            "hoursOfOperation": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                  "openingTime": "09:00:00", "closingTime": "11:30:00"}]}))
        batch.append(("Schedule", f"sched-{n}", {
            "resourceType": "Schedule", "active": True,
            "serviceType": [{"coding": [{"system": SNOMED, "code": SERVICES[n % len(SERVICES)]}]}],
            "specialty": [{"coding": [{"system": SNOMED, "code": SPECIALTIES[n % len(SPECIALTIES)]}]}],
            "actor": [{"reference": f"Location/loc-{n}"}, {"reference": f"Practitioner/prac-{n % practitioners}"}]}))
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()


def grow(ctx, locations: int, days: int) -> None:
    """Every Schedule's Slots for the first `days` days (what is there already is skipped)."""
    from fhirserver.scheduling import slots
    last = FIRST_DAY + datetime.timedelta(days=days - 1)
    with ctx.forms():
        for n in range(locations):
            slots.generate(ctx, f"sched-{n}", FIRST_DAY, last, MINUTES)


def _offered(k: int) -> str:
    """A service type and specialty that some Schedules offer (Schedule n: service n % 5, specialty n % 10)."""
    return f"&service-type={SNOMED}|{SERVICES[k % len(SERVICES)]}&specialty={SPECIALTIES[k]}"


def find_latencies(client, locations: int, days: int, rng: random.Random, runs: int) -> dict:
    practitioners = max(1, locations // 5)

    def window():
        start = FIRST_DAY + datetime.timedelta(days=rng.randrange(max(1, days)))
        return f"start={start.isoformat()}&end={(start + datetime.timedelta(days=7)).isoformat()}"

    cases = {
        "no criteria": lambda: "",
        "practitioner": lambda: f"&practitioner=Practitioner/prac-{rng.randrange(practitioners)}",
        "location": lambda: f"&location=Location/loc-{rng.randrange(locations)}",
        "service+specialty": lambda: _offered(rng.randrange(len(SPECIALTIES))),
        "near 10 km": lambda: f"&near={rng.uniform(10, 30):.4f}|{rng.uniform(70, 88):.4f}|10|km",
        "nothing offered": lambda: f"&service-type={SNOMED}|{SERVICES[1]}&specialty={SPECIALTIES[0]}",
    }
    out = {}
    for name, extra in cases.items():
        times = []
        for _ in range(runs):
            url = f"/fhir/Appointment/$find?{window()}{extra()}&_count=10"
            t0 = time.perf_counter()
            r = client.get(url)
            times.append(time.perf_counter() - t0)
            if r.status_code != 200:
                sys.exit(f"{url}: {r.status_code} {r.get_data(as_text=True)[:400]}")
        times.sort()
        out[name] = (statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000)
    return out


def bench_find(args) -> None:
    rng = random.Random(7)
    work = tempfile.mkdtemp(prefix="bench-scheduling-")
    try:
        app, ctx = open_ctx(os.path.join(work, "find.db"))
        client = app.test_client()
        t0 = time.perf_counter()
        seed_directory(ctx, args.locations, rng)
        print(f"directory: {args.locations} Locations and Schedules, {max(1, args.locations // 5)} Practitioners "
              f"in {time.perf_counter() - t0:.1f} s")
        print(f"{'slots':>10} {'gen s':>8} {'slots/s':>8}  " + "  ".join(f"{c:>24}" for c in (
            "no criteria", "practitioner", "location", "service+specialty", "near 10 km", "nothing offered")))
        have = 0
        for target in sorted(size(s) for s in args.sizes.split(",")):
            days = max(1, -(-target // (args.locations * SLOTS_PER_DAY)))
            t0 = time.perf_counter()
            grow(ctx, args.locations, days)
            took = time.perf_counter() - t0
            total = args.locations * SLOTS_PER_DAY * days
            ctx.store.analyze()
            figures = find_latencies(client, args.locations, days, rng, args.runs)
            print(f"{total:>10} {took:>8.1f} {(total - have) / took:>8.0f}  " + "  ".join(
                f"p50 {p50:6.1f} p95 {p95:6.1f} ms" for p50, p95 in figures.values()), flush=True)
            have = total
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_contention(args) -> None:
    import requests
    from served import Server, percentile_ms, run_jobs
    work = tempfile.mkdtemp(prefix="bench-booking-")
    server = Server(work, args.workers, env_extra={"MEDPORT_WORKER": "off", "MEDPORT_AUDIT_ACCESS": "off"})
    try:
        s = requests.Session()
        h = {"Content-Type": "application/fhir+json"}
        s.put(f"{server.base}/Location/busy", headers=h, json={
            "resourceType": "Location", "id": "busy", "hoursOfOperation": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "allDay": True}]})
        s.put(f"{server.base}/Schedule/busy", headers=h, json={"resourceType": "Schedule", "id": "busy",
                                                                 "actor": [{"reference": "Location/busy"}]})
        days = max(1, -(-args.contended // 96))
        r = s.post(f"{server.base}/Schedule/busy/$generate-slots", headers=h, json={"resourceType": "Parameters", "parameter": [
            {"name": "start", "valueDate": FIRST_DAY.isoformat()},
            {"name": "end", "valueDate": (FIRST_DAY + datetime.timedelta(days=days - 1)).isoformat()},
            {"name": "minutes", "valueInteger": 15}]})
        assert r.status_code == 200, r.text
        ids, cursor = [], f"{server.base}/Slot?schedule=Schedule/busy&_count=1000"
        while cursor:
            page = s.get(cursor).json()
            ids += [e["resource"]["id"] for e in page.get("entry", ())]
            cursor = next((link["url"] for link in page.get("link", ()) if link["relation"] == "next"), None)
        ids = ids[:args.contended]
        patient = s.post(f"{server.base}/Patient", headers=h, json={"resourceType": "Patient", "name": [{"family": "Bench"}]}).json()["id"]
        free = set(ids)
        rng = random.Random(11)

        def jobs():
            while free:
                yield rng.choice(sorted(free)) if free else None

        def work_(session, sid):
            if sid is None:
                return None
            r = session.post(f"{server.base}/Appointment/$book", headers=h, json={"resourceType": "Parameters", "parameter": [
                {"name": "slot", "valueReference": {"reference": f"Slot/{sid}"}},
                {"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}}]})
            if r.status_code == 200:
                free.discard(sid)
            return r.status_code

        wall, lat, results = run_jobs(args.threads, jobs(), work_, requests.Session)
        ok = [d for d, r in zip(lat, results) if r == 200]
        conflict = [d for d, r in zip(lat, results) if r == 409]
        other = [r for r in results if r not in (200, 409, None)]
        print(f"contention: {len(ids)} slots, {args.threads} threads, {args.workers} workers: {wall:.1f} s; "
              f"{len(ok) / wall:.0f} bookings/s (p50 {percentile_ms(ok, 50):.1f} ms), "
              f"{len(conflict) / wall:.0f} x 409/s (p50 {percentile_ms(conflict, 50):.1f} ms); "
              f"{len(ok)} booked, {len(conflict)} refused, other answers {other[:5]}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locations", type=int, default=10000)
    ap.add_argument("--sizes", default="100k", help="Slot counts to measure $find at (multiples of --locations x 10), e.g. 100k,1M")
    ap.add_argument("--runs", type=int, default=50, help="$find calls per criteria and size")
    ap.add_argument("--threads", type=int, default=20)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--contended", type=int, default=200, help="Slots the booking threads compete for")
    ap.add_argument("--skip-find", action="store_true")
    ap.add_argument("--skip-contention", action="store_true")
    args = ap.parse_args()
    if not args.skip_find:
        bench_find(args)
    if not args.skip_contention:
        bench_contention(args)


if __name__ == "__main__":
    main()
