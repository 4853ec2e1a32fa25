#!/usr/bin/env python
"""Subscriptions benchmark (docs/subscriptions.md): what the event hook costs a write, how fast the
outbox drains, and notification latency from commit to delivery.

In-process, a fresh SQLite store, authorization off, a rest-hook receiver on 127.0.0.1 (http allowed
to loopback for the run):

1. write cost: --writes Task creates with 0, 1 and 10 live subscriptions on task-status-changed
   (writes/s; each event is a counter update plus two records in the write's own transaction);
2. outbox throughput: the events queued in (1) drained by the delivery pass (events/s; at most
   backport-max-count = 10 events per notification);
3. latency: a delivery thread runs the pass every --poll-ms (as `medport worker` does every
   worker_poll_s), while --latency Tasks are written one at a time; p50/p99 of commit -> the
   receiver has the notification.

    .venv/bin/python bench/bench_subscriptions.py [--writes 2000] [--latency 300] [--poll-ms 50]

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import http.server
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fhirserver.config import Settings  # noqa: E402
from fhirserver.context import ServerContext  # noqa: E402
from fhirserver.interactions.create import create  # noqa: E402
from fhirserver.interactions.update import update  # noqa: E402
from fhirserver.storage import open_store  # noqa: E402
from fhirserver.subscriptions import state, topics  # noqa: E402
from fhirserver.subscriptions.deliver import Deliveries  # noqa: E402

TASK = {"resourceType": "Task", "status": "requested", "intent": "order", "owner": {"reference": "Organization/lab"}}


class Receiver:
    """Records (arrival time, focus ids) of every notification."""

    def __init__(self):
        self.arrivals: list[tuple[float, list[str]]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ids = [e["fullUrl"].rsplit("/", 1)[1] for e in body["entry"][1:]]
                receiver.arrivals.append((time.perf_counter(), ids))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def subscribe(ctx, url: str) -> str:
    sub = {"resourceType": "Subscription", "status": "requested", "reason": "bench",
           "criteria": topics.PREFIX + "task-status-changed",
           "channel": {"type": "rest-hook", "endpoint": url, "payload": "application/fhir+json"}}
    return create(ctx, "Subscription", sub).version.id


def writes_per_s(ctx, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        create(ctx, "Task", dict(TASK))
    return n / (time.perf_counter() - start)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--latency", type=int, default=300)
    ap.add_argument("--poll-ms", type=float, default=50)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    folder = tempfile.mkdtemp(prefix="bench-subs-")
    try:
        settings = Settings(store=f"sqlite:///{folder}/store.db", base_url="http://bench.test/fhir", auth="off",
                            subscription_allow_http_loopback="on")
        ctx = ServerContext(settings, open_store(settings))
        receiver = Receiver()
        deliveries = Deliveries(ctx)
        print(f"1. write cost, {args.writes} Task creates")
        subs: list[str] = []
        for wanted in (0, 1, 10):
            while len(subs) < wanted:
                subs.append(subscribe(ctx, receiver.url))
            deliveries.run_once()                  # handshakes: the subscriptions are active
            print(f"   {wanted:2d} live subscriptions: {writes_per_s(ctx, args.writes):8.0f} writes/s")
        queued = sum(len(v) for v in state.pending(ctx.store).values())
        start = time.perf_counter()
        while state.pending(ctx.store):
            deliveries.run_once()
        elapsed = time.perf_counter() - start
        print(f"2. outbox: {queued} events delivered in {elapsed:.1f} s: {queued / elapsed:.0f} events/s")
        for sid in subs[1:]:                       # one subscriber for the latency run
            sub = json.loads(ctx.store.read("Subscription", sid).body)
            sub["status"] = "off"
            update(ctx, "Subscription", sid, sub)
        stop = threading.Event()

        def worker():
            while not stop.is_set():
                deliveries.run_once()
                stop.wait(args.poll_ms / 1000)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        committed: dict[str, float] = {}
        for _ in range(args.latency):
            tid = create(ctx, "Task", dict(TASK)).version.id
            committed[tid] = time.perf_counter()
            time.sleep(args.poll_ms / 1000 / 3)
        deadline = time.time() + 60
        while time.time() < deadline and state.pending(ctx.store):
            time.sleep(0.05)
        stop.set()
        thread.join()
        latencies = [(t - committed[i]) * 1000 for t, ids in receiver.arrivals for i in ids if i in committed]
        print(f"3. latency commit -> delivered, {len(latencies)} notifications (pass every {args.poll_ms:.0f} ms): "
              f"p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
              f"mean {statistics.mean(latencies):.1f} ms")
        receiver.server.shutdown()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
