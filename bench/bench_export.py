#!/usr/bin/env python
"""Bulk export benchmark: resources/s and peak RSS of a system-level $export at 10k, 100k (and 1M).

The corpus is bench_search's (the Synthea bundles of tests/data/synthea loaded in rounds with fresh
ids straight into one SQLite store that grows through the sizes). At each size an export of every
type is kicked off through the app (authorization off) and run by `medport worker --once` in a
fresh process; the worker reports the time of its round and its own peak RSS (ru_maxrss), so the
figures are the export's alone (no loading, no HTTP). The goal it is read against: >= 20,000
resources/s, and peak RSS at 1M within 20% of the figure at 10k (memory flat in the export's size).

    .venv/bin/python bench/bench_export.py                   # 10k, 100k
    .venv/bin/python bench/bench_export.py --sizes 10k,100k,1M --db var/bench-1m.db

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import bench_search

REPO = bench_search.REPO
WORKER = r"""
import json, resource, sys, time, logging
logging.disable(logging.CRITICAL)
from fhirserver.config import Settings
from fhirserver.context import ServerContext
from fhirserver.storage import open_store
from fhirserver.bulk.worker import Worker
ctx = ServerContext(Settings(store=sys.argv[1], base_url=sys.argv[2], auth="off"), open_store(Settings(store=sys.argv[1])))
t0 = time.perf_counter()
Worker(ctx).run_once()
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def export_once(db: str) -> dict:
    from fhirserver import create_app
    from fhirserver.config import Settings
    url = "sqlite:///" + db
    app = create_app(Settings(store=url, base_url=bench_search.BASE, auth="off", audit_access="off"))
    client = app.test_client()
    kick = client.get("/fhir/$export", headers={"Prefer": "respond-async"})
    assert kick.status_code == 202, kick.get_data(as_text=True)
    status = kick.headers["Content-Location"].replace(bench_search.BASE, "/fhir")
    out = subprocess.run([sys.executable, "-c", WORKER, url, bench_search.BASE], capture_output=True, text=True,
                         check=True, cwd=REPO)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    manifest = client.get(status).get_json()
    figures["resources"] = sum(o["count"] for o in manifest["output"])
    figures["files"] = len(manifest["output"])
    figures["rate"] = figures["resources"] / figures["seconds"]
    client.delete(status)           # its files go now
    app.config["MEDPORT"].store.close()
    return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10k,100k", help="store sizes, ascending (default 10k,100k)")
    p.add_argument("--db", default="", help="grow this SQLite file (kept) instead of a temporary one")
    args = p.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    workdir = tempfile.mkdtemp(prefix="medport-bench-export-")
    db = args.db or os.path.join(workdir, "export.db")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = []
    try:
        entries, types = bench_search.read_templates(bench_search.BUNDLE_DIR)
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(2, initializer=bench_search._init_worker, initargs=(bench_search.BUNDLE_DIR, bench_search.BASE)) \
                as pool:
            for size in sizes:
                bench_search.grow(db, size, pool, entries, types)
                figures = export_once(db)
                rows.append((size, figures))
                print(f"  {size:>9,}: {figures['resources']:,} resources in {figures['files']} files, "
                      f"{figures['seconds']:.1f} s = {figures['rate']:,.0f} resources/s, "
                      f"peak RSS {figures['peak_rss_mib']:,.0f} MiB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\nsize        resources/s   peak RSS (MiB)   RSS vs smallest")
    first = rows[0][1]["peak_rss_mib"] if rows else 1
    for size, f in rows:
        print(f"{size:>9,}   {f['rate']:>11,.0f}   {f['peak_rss_mib']:>14,.0f}   {f['peak_rss_mib'] / first:>14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
