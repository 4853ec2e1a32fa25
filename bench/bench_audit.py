#!/usr/bin/env python
"""The price of the audit trail: the same server with every interaction audited (MEDPORT_AUDIT_ACCESS=on,
the default) and without (off), side by side in one run, and the audit log's integration lag.

Two `medport serve` processes (fresh SQLite stores, same settings, authorization on with a backend
token) get the same creates; then rounds of reads alternate between them (on, off, off, on, ...), so
both see the same machine load. The reads are wrk's (bench_read.py: 32 keep-alive connections cycling
over the created resources, --seconds per round), so the server, not a Python client, is what is
measured; without wrk (or with --python-load) 8 Python client threads read each resource once per round. Each read with auditing on stores a BALP AuditEvent before answering
(group commit: many requests' events per transaction). The server CPU each read costs is read from
/proc (user + system time of every process of the server, master and workers, integrator included).
Then, on the audited server, how long the integrator takes to sequence every stored event into the
Merkle log.

    .venv/bin/python bench/bench_audit.py [--n 1000] [--rounds 6] [--threads 8] [--workers 2] [--sync NORMAL]
        [--integrator off]

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_read import ensure_wrk, run_wrk  # noqa: E402
from bench_rest import FHIR_JSON, HEADERS, load_examples  # noqa: E402
from served import Server, group_cpu_s, run_jobs  # noqa: E402


def create_all(server: Server, headers: dict, bodies, threads: int) -> tuple[float, list[tuple[str, str]]]:
    created = []

    def create(session, job):
        rtype, body = job
        r = session.post(f"{server.base}/{rtype}", data=body, headers={**headers, "Prefer": "return=minimal"},
                         timeout=60)
        if r.status_code == 201:
            created.append((rtype, r.headers["Location"].split("/")[-3]))
        return r.status_code == 201

    wall, _lat, _ok = run_jobs(threads, bodies, create, requests.Session)
    return len(created) / wall, created


def read_all(server: Server, headers: dict, ids, threads: int) -> float:
    def read(session, job):
        rtype, rid = job
        r = session.get(f"{server.base}/{rtype}/{rid}", headers=headers, timeout=60)
        return r.status_code == 200

    wall, _lat, ok = run_jobs(threads, ids, read, requests.Session)
    if not all(ok):
        sys.exit(f"{ok.count(False)} reads failed on {server.base}")
    return len(ids) / wall, len(ids)


def read_wrk(wrk: str, server: Server, headers: dict, ids, seconds: float) -> tuple[float, int]:
    """(reads/s, reads) of wrk cycling over the resources for `seconds`."""
    prefix = server.base.split("/", 3)[3]
    started = time.perf_counter()
    n, bad = run_wrk(wrk, server.base, headers, 32, seconds, [f"/{prefix}/{t}/{i}" for t, i in ids])
    if bad:
        sys.exit(f"{bad} of {n} reads failed on {server.base}")
    return n / (time.perf_counter() - started), n


def server_cpu_s(server: Server) -> float:
    """CPU seconds of every live process of the server (`medport serve` runs in a session of its own)."""
    return group_cpu_s(server.proc.pid)


def integration_lag(store_path: str, timeout_s: float = 120) -> tuple[int, float]:
    """(events recorded, seconds until the log holds them all), measured from now: the events still in
    the audit journal are drained into AuditEvents by the server's integrator, then logged."""
    from fhirserver.audit_log import log
    from fhirserver.storage.sqlite import SqliteStore
    store = SqliteStore(store_path)
    try:
        total = store.history("AuditEvent", limit=0).total + len(store.journal_read(10 ** 7))
        started = time.perf_counter()
        while log.size(store) < total and time.perf_counter() - started < timeout_s:
            time.sleep(0.05)
        return total, time.perf_counter() - started
    finally:
        store.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="resources created on each server, default 1000")
    p.add_argument("--rounds", type=int, default=6, help="read rounds per server, default 6")
    p.add_argument("--threads", type=int, default=8, help="HTTP client threads of the creates (and of Python "
                                                          "reads), default 8")
    p.add_argument("--seconds", type=float, default=5, help="seconds of wrk reads per round, default 5")
    p.add_argument("--python-load", action="store_true", help="read with Python client threads even if wrk is there")
    p.add_argument("--workers", type=int, default=2, help="server worker processes, default 2")
    p.add_argument("--sync", choices=("FULL", "NORMAL"), default=None,
                   help="MEDPORT_SQLITE_SYNCHRONOUS of both servers (default: the server's, FULL)")
    p.add_argument("--integrator", choices=("on", "off"), default="on",
                   help="off: no integrator thread (MEDPORT_AUDIT_INTEGRATOR=off): the events stay in the "
                        "journal, which shows what the integrator costs; default on")
    args = p.parse_args(argv)

    wrk = None if args.python_load else ensure_wrk()
    examples = load_examples()
    bodies = [(r["resourceType"], json.dumps(r).encode()) for r in itertools.islice(itertools.cycle(examples), args.n)]
    workdir = tempfile.mkdtemp(prefix="medport-bench-audit-")
    servers = {mode: Server(workdir, args.workers, sync=args.sync, auth="on", name=mode,
                            env_extra={"MEDPORT_AUDIT_ACCESS": mode, "MEDPORT_AUDIT_INTEGRATOR": args.integrator})
               for mode in ("on", "off")}
    try:
        heads = {m: {**HEADERS, **s.headers()} for m, s in servers.items()}
        reads = {m: {"Accept": FHIR_JSON, **s.headers()} for m, s in servers.items()}
        creates, ids = {}, {}
        for mode in ("on", "off"):
            create_all(servers[mode], heads[mode], bodies[: max(20, args.n // 10)], args.threads)   # warm-up
            creates[mode], ids[mode] = create_all(servers[mode], heads[mode], bodies, args.threads)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        cpu_us: dict[str, list[float]] = {"on": [], "off": []}
        for k in range(args.rounds):
            for mode in (("on", "off") if k % 2 == 0 else ("off", "on")):
                before = server_cpu_s(servers[mode])
                rate, n = read_wrk(wrk, servers[mode], reads[mode], ids[mode], args.seconds) if wrk else \
                    read_all(servers[mode], reads[mode], ids[mode], args.threads)
                rates[mode].append(rate)
                cpu_us[mode].append((server_cpu_s(servers[mode]) - before) * 1e6 / n)
        if args.integrator == "on":
            events, lag = integration_lag(servers["on"].store_path)

        ratios = [a / b for a, b in zip(rates["on"], rates["off"])]
        how = f"wrk, 32 connections, {args.seconds:g} s each" if wrk else f"{len(ids['on'])} reads each, " \
            f"{args.threads} Python client threads"
        print(f"{args.n} resources per server; {args.rounds} read rounds ({how}), alternating")
        print(f"{'':18} {'audited':>10} {'not audited':>12} {'ratio':>7}")
        print(f"{'create /s':18} {creates['on']:10.0f} {creates['off']:12.0f} {creates['on'] / creates['off']:7.2f}")
        print(f"{'read /s (median)':18} {statistics.median(rates['on']):10.0f} {statistics.median(rates['off']):12.0f} "
              f"{statistics.median(rates['on']) / statistics.median(rates['off']):7.2f}")
        print(f"{'CPU us/read (med)':18} {statistics.median(cpu_us['on']):10.0f} "
              f"{statistics.median(cpu_us['off']):12.0f} "
              f"{statistics.median(cpu_us['on']) / statistics.median(cpu_us['off']):7.2f}")
        print(f"read ratio per round: {', '.join(f'{r:.2f}' for r in ratios)}")
        if args.integrator == "on":
            print(f"integration: {events} events recorded; the log held them all {lag:.2f} s after the load ended")
        else:
            print("integration: off (the audited server's events stay in its journal)")
        print(f"(server: {args.workers} workers, authorization on, backend token, SQLite synchronous "
              f"{args.sync or 'FULL'}, integrator {args.integrator}; "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()})")
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
