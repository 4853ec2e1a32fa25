#!/usr/bin/env python
"""Ingest benchmark: Synthea transaction Bundles over HTTP vs. the raw store floor.

HTTP: `medport serve --workers N` runs as a subprocess on a fresh temporary
SQLite store; --threads client threads, each with its own requests.Session,
POST the Synthea transaction Bundles (tests/data/synthea: 12 bundles with
urn:uuid references; tests/data/synthea-2021: 3 patient bundles with
conditional references, after the two 0-* batch bundles they refer to).
Every round gives each bundle fresh urn:uuid fullUrls (all urn:uuid strings
rewritten consistently), so every round creates new resources. Bodies are
serialised before the clock starts. Figures: resources/s over the whole run,
per-bundle latency p50/p99.

Raw floor: the same resources, in the same bundle-sized units, written in this
process straight into a fresh SqliteStore with Store.transaction() +
Transaction.write: ids assigned, references rewritten, meta stamped, bodies
serialised and index rows extracted (fhirserver.search.extract) before the
clock starts. No HTTP, no JSON parsing, no validation, no planning.

Both run with SQLite synchronous=FULL (the default) and again with NORMAL
(MEDPORT_SQLITE_SYNCHRONOUS=NORMAL), unless --sync says otherwise.

Index layout (issue 16): with the first --sync setting the raw floor also runs on
stores first grown untimed to --grow resources (default 100,000: copies of the
warm-up writes under new ids), once with the current index layout ("raw new")
and once with the layout before issue 16 ("raw old": every composite component
copied under key#i, search/extract.py legacy=True), in the same run; --cache-mib
adds runs of the new layout with other page cache sizes.

    .venv/bin/python bench/bench_ingest.py [--rounds 5] [--threads 4] [--workers 2] [--sync FULL,NORMAL]
                                           [--grow 100000] [--layouts new,old] [--cache-mib 2,256]

Prints figures only; nothing here asserts on speed. The goals it is read
against: >= 1,400 resources/s over HTTP with 2 workers on a 2-core machine,
HTTP >= 85% of the raw floor, and the grown raw floor >= 1.4x the old layout's.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import uuid

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNTHEA_2019 = os.path.join(REPO, "tests", "data", "synthea")
SYNTHEA_2021 = os.path.join(REPO, "tests", "data", "synthea-2021")
from served import Server, percentile_ms, run_jobs  # noqa: E402 (bench/ is on sys.path when run as a script)

FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
GOAL_RATE, GOAL_RATIO, GOAL_LAYOUT = 1400, 0.85, 1.4
_URN = re.compile(r"urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


# -- data ------------------------------------------------------------------------------------------

def load_data(sets: list[str]) -> tuple[list[str], list[tuple[str, str, int]]]:
    """(prerequisite batch bundles as text, [(name, transaction bundle text, entries)])."""
    prereqs, bundles = [], []
    if "2019" in sets:
        for path in sorted(glob.glob(os.path.join(SYNTHEA_2019, "*.json"))):
            bundles.append(_read(path))
    if "2021" in sets:
        for path in sorted(glob.glob(os.path.join(SYNTHEA_2021, "*.json"))):
            (prereqs.append(_read(path)[1]) if os.path.basename(path).startswith("0-") else bundles.append(_read(path)))
    if not bundles:
        sys.exit("no Synthea bundles found")
    return prereqs, bundles


def _read(path: str) -> tuple[str, str, int]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return os.path.basename(path), text, len(json.loads(text).get("entry") or [])


def fresh(text: str) -> str:
    """The bundle with every urn:uuid replaced by a new one, consistently within the bundle."""
    mapping: dict[str, str] = {}
    return _URN.sub(lambda m: mapping.setdefault(m.group(0).lower(), f"urn:uuid:{uuid.uuid4()}"), text)


def workload(bundles, rounds: int) -> list[tuple[str, str, int]]:
    """rounds x bundles, each with fresh urn:uuids, as (name, text, entries)."""
    return [(name, fresh(text), n) for _ in range(rounds) for name, text, n in bundles]


# -- measurement -----------------------------------------------------------------------------------

class Stats:
    def __init__(self, sync: str, path: str, threads: int):
        self.sync, self.path, self.threads = sync, path, threads
        self.latencies: list[float] = []
        self.resources = 0
        self.wall = 0.0
        self.errors: list[str] = []

    @property
    def rate(self) -> float:
        return self.resources / self.wall if self.wall else 0.0

    def pct(self, p: float) -> float:
        return percentile_ms(self.latencies, p)


def run_parallel(stats: Stats, jobs: list, work, make_state=lambda: None) -> Stats:
    """work(state, job) -> (resources, error or None) for every job on stats.threads threads."""
    stats.wall, stats.latencies, results = run_jobs(stats.threads, jobs, work, make_state)
    stats.resources += sum(n for n, _ in results)
    stats.errors += [e for _, e in results if e]
    return stats


# -- HTTP ------------------------------------------------------------------------------------------

def _post_bundle(session: requests.Session, base: str, body: bytes, entries: int) -> tuple[int, str | None]:
    r = session.post(base, data=body, headers=HEADERS, timeout=300)
    if r.status_code != 200:
        return 0, f"{r.status_code}: {r.text[:300]}"
    created = r.content.count(b'"201 Created"')       # cheaper than parsing the response
    if created != entries:
        return created, f"{entries - created} of {entries} entries not created"
    return entries, None


def bench_http(prereqs: list[str], bundles, jobs, threads: int, workers: int, sync: str, workdir: str,
               serve_prefix=()) -> Stats:
    server = Server(workdir, workers, sync, serve_prefix)
    try:
        s = requests.Session()
        for text in prereqs:        # the Organizations/Practitioners/Locations the 2021 bundles refer to
            r = s.post(server.base, data=text.encode(), headers=HEADERS, timeout=300)
            if r.status_code != 200:
                sys.exit(f"loading a prerequisite batch failed: {r.status_code} {r.text[:500]}")
        # warm-up: one round, untimed (validators and search parameters load lazily in each worker)
        warm = run_parallel(Stats(sync, "warm", threads), [(fresh(t).encode(), n) for _, t, n in bundles],
                            lambda sess, job: _post_bundle(sess, server.base, *job), requests.Session)
        if warm.errors:
            sys.exit(f"warm-up failed: {warm.errors[:3]}")
        bodies = [(text.encode(), n) for _, text, n in jobs]           # serialised before the clock
        return run_parallel(Stats(sync, "http", threads), bodies,
                            lambda sess, job: _post_bundle(sess, server.base, *job), requests.Session)
    finally:
        server.stop()


# -- raw floor -------------------------------------------------------------------------------------

def prepare_writes(text: str, base: str, layout: str = "new") -> list:
    """One bundle's resources as Writes: ids assigned, references rewritten (urn:uuid -> Type/id;
    conditional references -> a fixed id per criteria), meta stamped, body serialised, index rows extracted
    (layout "old": every composite component copied under key#i, as before issue 16)."""
    from fhirserver import jsonio
    from fhirserver.interactions.common import now_instant
    from fhirserver.interactions.references import is_conditional, references, rewrite
    from fhirserver.search.extract import extract
    from fhirserver.storage.base import Write

    bundle = json.loads(text)
    entries = bundle.get("entry") or []
    ids = [str(uuid.uuid4()) for _ in entries]
    mapping = {e["fullUrl"]: f"{e['resource']['resourceType']}/{i}" for e, i in zip(entries, ids) if e.get("fullUrl")}
    writes = []
    for e, rid in zip(entries, ids):
        resource = e["resource"]
        for ref in references(resource):
            if is_conditional(ref) and ref not in mapping:
                mapping[ref] = f"{ref.split('?')[0]}/{uuid.uuid5(uuid.NAMESPACE_URL, ref)}"
        resource = rewrite(resource, mapping)
        stamp = now_instant()
        resource["id"] = rid
        resource["meta"] = {**(resource.get("meta") or {}), "versionId": "1", "lastUpdated": stamp}
        writes.append(Write(resource["resourceType"], rid, 1, stamp, "POST", jsonio.dumps(resource),
                            extract(resource, base, legacy=layout == "old")))
    return writes


class RawStore:
    """A fresh SqliteStore for the raw floor with the index layout `layout` (new, or old: before issue 16)
    and a page cache of `cache_kib` (default: the store's), given the untimed start of the HTTP store
    (prerequisites and one warm-up round) and grown untimed to `grow` resources."""

    def __init__(self, prereqs, bundles, sync: str, workdir: str, layout: str = "new", grow: int = 0,
                 cache_kib: int | None = None):
        import dataclasses

        from fhirserver.storage import sqlite as sqlite_store

        self.base, self.layout, self.sync = "http://127.0.0.1/fhir", layout, sync
        cache = cache_kib or sqlite_store.PAGE_CACHE_KIB
        self.name = "raw" if not grow else f"raw {layout}" + (f" {cache // 1024}M" if cache_kib else "")
        self.path = os.path.join(workdir, f"raw-{sync}-{layout}-{cache}.db")
        self.store = sqlite_store.SqliteStore(self.path, synchronous=sync, page_cache_kib=cache)
        warm = [prepare_writes(t, self.base, layout) for t in prereqs] + \
            [prepare_writes(fresh(t), self.base, layout) for _, t, _ in bundles]
        for writes in warm:
            self.write_bundle(None, writes)
        template = [w for writes in warm for w in writes]
        self.grown = sum(len(w) for w in warm)
        while self.grown < grow:     # copies of the warm-up writes under new ids: B-trees grow as by ingest
            chunk = [dataclasses.replace(w, id=str(uuid.uuid4())) for w in template[:min(5000, grow - self.grown)]]
            self.write_bundle(None, chunk)
            self.grown += len(chunk)
        self.store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def units(self, jobs) -> list:
        return [prepare_writes(text, self.base, self.layout) for _, text, _ in jobs]

    def write_bundle(self, _state, writes):
        with self.store.transaction() as tx:
            for w in writes:
                tx.write(w)
        return len(writes), None

    def close(self) -> None:
        self.store.close()
        for suffix in ("", "-wal", "-shm", ".writer-lock"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path + suffix)


def bench_raw(prereqs: list[str], bundles, jobs, sync: str, workdir: str) -> Stats:
    raw = RawStore(prereqs, bundles, sync, workdir)
    units = raw.units(jobs)       # everything before the clock
    stats = run_parallel(Stats(sync, raw.name, 1), units, raw.write_bundle)
    raw.close()
    return stats


def bench_grown(prereqs: list[str], bundles, jobs, sync: str, workdir: str, variants, grow: int) -> list[Stats]:
    """The raw floor of each (layout, cache KiB) variant on its own store grown to `grow` resources. The
    variants take turns, one slice of the jobs (a round's bundles) each, the order rotating every slice,
    so that the load of a shared machine falls on all of them alike; per slice, the fastest is counted."""
    stores = [RawStore(prereqs, bundles, sync, workdir, layout, grow, cache) for layout, cache in variants]
    units = [raw.units(jobs) for raw in stores]
    out = [Stats(sync, raw.name, 1) for raw in stores]
    per = max(1, len(bundles))
    wins = [0] * len(stores)
    for n, start in enumerate(range(0, len(jobs), per)):
        rates = {}
        for k in [(n + i) % len(stores) for i in range(len(stores))]:
            part = run_parallel(Stats(sync, "", 1), units[k][start:start + per], stores[k].write_bundle)
            out[k].wall += part.wall
            out[k].latencies += part.latencies
            out[k].resources += part.resources
            out[k].errors += part.errors
            rates[k] = part.rate
        wins[max(rates, key=rates.get)] += 1
    for s, raw, w in zip(out, stores, wins, strict=True):
        s.grown, s.wins, s.slices = raw.grown, w, len(range(0, len(jobs), per))
        raw.close()
    return out


# -- report ----------------------------------------------------------------------------------------

def report(rows: list[Stats], args) -> None:
    print()
    print(f"{'sync':6} {'path':12} {'resources':>9} {'bundles':>7} {'threads':>7} {'seconds':>8} "
          f"{'resources/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for s in rows:
        print(f"{s.sync:6} {s.path:12} {s.resources:9d} {len(s.latencies):7d} {s.threads:7d} {s.wall:8.2f} "
              f"{s.rate:11.0f} {s.pct(50):8.1f} {s.pct(99):8.1f} {len(s.errors):6d}")
    print()
    by = {(s.sync, s.path): s for s in rows}
    for sync in args.sync:
        h, r = by.get((sync, "http")), by.get((sync, "raw"))
        if h and r:
            ratio = h.rate / r.rate if r.rate else 0.0
            print(f"{sync:6}: HTTP {h.rate:.0f} resources/s = {100 * ratio:.0f}% of the raw floor ({r.rate:.0f}/s); "
                  f"goal >= {GOAL_RATE}/s: {'met' if h.rate >= GOAL_RATE else 'NOT met'}, "
                  f">= {100 * GOAL_RATIO:.0f}% of raw: {'met' if ratio >= GOAL_RATIO else 'NOT met'}")
        grown = [s for s in rows if s.sync == sync and getattr(s, "grown", 0) >= args.grow > 0]
        old = next((s for s in grown if s.path == "raw old"), None)
        for s in grown:
            if old is not None and s is not old:
                x = s.rate / old.rate if old.rate else 0.0
                print(f"{sync:6}: raw floor at {s.grown + s.resources} resources: {s.path} {s.rate:.0f}/s = {x:.2f}x "
                      f"the old layout ({old.rate:.0f}/s); goal >= {GOAL_LAYOUT}x: "
                      f"{'met' if x >= GOAL_LAYOUT else 'NOT met'}")
    for s in rows:
        for e in s.errors[:3]:
            print(f"error ({s.sync} {s.path}): {e}")
    print(f"\n(server: {args.workers} workers x 4 threads; HTTP clients: {args.threads} threads; raw floor: "
          f"1 thread, one SQLite transaction per bundle; {os.cpu_count()} CPUs, Python {platform.python_version()})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5,
                   help="times every bundle is sent (fresh ids each time); default 5 = about 10,600 resources")
    p.add_argument("--threads", type=int, default=4, help="HTTP client threads, default 4")
    p.add_argument("--workers", type=int, default=2, help="server worker processes, default 2")
    p.add_argument("--sync", default="FULL,NORMAL",
                   help="SQLite synchronous settings to run, comma-separated (default FULL,NORMAL)")
    p.add_argument("--sets", default="2019,2021", help="Synthea sets to use: 2019, 2021 or both (default)")
    p.add_argument("--no-raw", action="store_true", help="skip the raw floor")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP runs (raw floors only)")
    p.add_argument("--grow", type=int, default=100_000,
                   help="resources the stores of the layout comparison hold before the clock starts (default "
                        "100,000; 0 skips the comparison); with the first --sync setting only")
    p.add_argument("--layouts", default="new,old",
                   help="index layouts compared on the grown store: new, old (before issue 16); default both")
    p.add_argument("--cache-mib", default="",
                   help="also run the grown new-layout floor with these page cache sizes, comma-separated MiB")
    p.add_argument("--serve-prefix", default="",
                   help="command put before `medport serve`, e.g. 'py-spy record -o /tmp/p.svg --subprocesses --'")
    args = p.parse_args(argv)
    args.sync = [x.strip().upper() for x in args.sync.split(",") if x.strip()]

    prereqs, bundles = load_data(args.sets.split(","))
    per_round = sum(n for _, _, n in bundles)
    print(f"{len(bundles)} transaction bundles, {per_round} resources per round, {args.rounds} rounds "
          f"= {per_round * args.rounds} resources ({len(prereqs)} prerequisite batch bundles loaded first)")
    workdir = tempfile.mkdtemp(prefix="medport-bench-ingest-")
    rows = []
    try:
        for sync in args.sync:
            jobs = workload(bundles, args.rounds)
            if not args.no_http:
                rows.append(bench_http(prereqs, bundles, jobs, args.threads, args.workers, sync, workdir,
                                       args.serve_prefix.split()))
                print(f"  {sync} http: {rows[-1].rate:.0f} resources/s", flush=True)
            if not args.no_raw:
                rows.append(bench_raw(prereqs, bundles, jobs, sync, workdir))
                print(f"  {sync} raw:  {rows[-1].rate:.0f} resources/s", flush=True)
            if not args.no_raw and args.grow and sync == args.sync[0]:
                variants = [(layout, None) for layout in args.layouts.split(",")]
                variants += [("new", int(m) * 1024) for m in args.cache_mib.split(",") if m.strip()]
                for s in bench_grown(prereqs, bundles, jobs, sync, workdir, variants, args.grow):
                    rows.append(s)
                    print(f"  {sync} {s.path} at {s.grown} resources: {s.rate:.0f} resources/s "
                          f"(fastest in {s.wins} of {s.slices} slices)", flush=True)
        report(rows, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
