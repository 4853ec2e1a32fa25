#!/usr/bin/env python
"""Search benchmark: latency of a fixed query mix at 10k, 100k and 1M resources.

The corpus is the Synthea bundles of tests/data/synthea/, loaded over and over
("rounds") with fresh ids straight into a SqliteStore (no HTTP): every entry
gets a new uuid4, every urn:uuid: reference becomes Type/newid, Patient
identifier values get a round suffix (so an identifier matches one patient).
Two worker processes rewrite, serialise and extract index rows while the main
process writes ~1,700 resources per transaction. One database grows through
the sizes, and the mix is measured at each size.

The mix runs in-process through the whole app (Flask test client: parameter
parsing, SQL, Bundle rendering); there is no network hop. Parameters come from
the data: 50 different patients, 5 repetitions each (fewer if a query's time
budget runs out). Every query is timed with the default _total (accurate) and
with _total=none. By default the mix is measured in three states of the SQLite
planner statistics: none, the store's own sampled ANALYZE (what a running server
has: SqliteStore refreshes them whenever the store has doubled) and a full ANALYZE.

    .venv/bin/python bench/bench_search.py --sizes 10k,100k          # a few minutes
    .venv/bin/python bench/bench_search.py --db var/bench-1m.db --explain   # 10k, 100k, 1M
    .venv/bin/python bench/bench_search.py --sizes 10k --mongo mongomock://localhost/bench

With --mongo URL the same corpus is also copied into a MongoDB store at each size (a fresh
database) and the same mix measured there. With mongomock (in memory, in Python, scanning every
document) the figures only show that the code path works; a real server
(--mongo mongodb://host/medport_bench) gives real ones.

Prints figures only; nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import glob
import json
import logging
import multiprocessing
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BUNDLE_DIR = os.path.join(REPO, "tests", "data", "synthea")
BASE = "http://127.0.0.1:8080/fhir"
SYNTHEA_ID = "https://github.com/synthetichealth/synthea"
LOINC = "http://loinc.org"
UUID_REF = re.compile(r"urn:uuid:([0-9a-fA-F-]{36})")
PLANS_DOC = os.path.join(REPO, "docs", "search-plans.md")
GOAL_MS = 50.0
GOAL_GROWTH = 3.0


# -- corpus ----------------------------------------------------------------------------------------

def read_templates(bundle_dir: str):
    """Entries of every bundle, deduplicated by fullUrl (a few Organizations and
    Practitioners recur across bundles): [(type, old uuid, json text)], {old uuid: type}."""
    files = sorted(glob.glob(os.path.join(bundle_dir, "*.json")))
    if not files:
        sys.exit(f"no bundles in {bundle_dir}")
    entries, types = [], {}
    for path in files:
        with open(path, "rb") as f:
            bundle = json.load(f)
        for e in bundle.get("entry", []):
            full, res = e.get("fullUrl", ""), e["resource"]
            if not full.startswith("urn:uuid:"):
                sys.exit(f"{path}: entry without a urn:uuid: fullUrl")
            old = full[len("urn:uuid:"):]
            if old in types:
                continue
            types[old] = res["resourceType"]
            entries.append((res["resourceType"], old, json.dumps(res)))
    return entries, types


_W: dict = {}


def _init_worker(bundle_dir: str, base: str) -> None:
    logging.disable(logging.CRITICAL)
    _W["entries"], _W["types"] = read_templates(bundle_dir)
    _W["base"] = base


def prepare_round(round_no: int) -> list[tuple]:
    """One copy of the corpus with fresh ids: [(type, id, last_updated, body bytes, index rows)]."""
    from fhirserver import jsonio
    from fhirserver.interactions.common import now_instant
    from fhirserver.search.extract import extract

    types = _W["types"]
    new = {old: str(uuid.uuid4()) for old in types}

    def ref(m):
        old = m.group(1)
        return f"{types[old]}/{new[old]}" if old in new else m.group(0)

    stamp = now_instant()
    out = []
    for rtype, old, text in _W["entries"]:
        res = jsonio.loads(UUID_REF.sub(ref, text).encode())
        res["id"] = new[old]
        res["meta"] = {**(res.get("meta") or {}), "versionId": "1", "lastUpdated": stamp}
        if rtype == "Patient":
            for ident in res.get("identifier", []):
                if "value" in ident:
                    ident["value"] = f"{ident['value']}-r{round_no}"
        out.append((rtype, res["id"], stamp, jsonio.dumps(res), extract(res, _W["base"])))
    return out


def count_resources(db: str) -> tuple[int, int]:
    if not os.path.exists(db):
        return 0, 0
    conn = sqlite3.connect(db)
    try:
        # the corpus: the AuditEvents the measured requests themselves write (docs/audit.md) do not count
        total = conn.execute("SELECT count(*) FROM resource WHERE type != 'AuditEvent'").fetchone()[0]
        patients = conn.execute("SELECT count(*) FROM resource WHERE type = 'Patient'").fetchone()[0]
        return total, patients
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        conn.close()


def db_bytes(db: str) -> int:
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


def grow(db: str, target: int, pool, entries, types) -> dict | None:
    """Load rounds until the database holds at least `target` resources."""
    from fhirserver.storage.base import Write
    from fhirserver.storage.sqlite import SqliteStore

    have, patients = count_resources(db)
    if have >= target:
        print(f"corpus: {db} already holds {have:,} resources (>= {target:,}): no loading")
        return None
    per_round = len(entries)
    patients_per_round = sum(1 for t, _o, _x in entries if t == "Patient")
    first = patients // patients_per_round         # rounds already loaded (round numbers go on from there)
    last = first + -(-(target - have) // per_round)
    store = SqliteStore(db, synchronous="NORMAL")
    conn = store._conn()
    conn.execute("PRAGMA cache_size=-1048576")    # 1 GiB page cache for the loader's connection only
    print(f"corpus: loading rounds {first}..{last - 1} ({per_round:,} resources each) into {db} "
          f"to reach {target:,}")
    window, pending, loaded = 4, collections.deque(), 0
    start = last_report = time.perf_counter()
    write_s = 0.0
    rounds = iter(range(first, last))
    for r in rounds:
        pending.append(pool.apply_async(prepare_round, (r,)))
        if len(pending) >= window:
            break
    while pending:
        writes = pending.popleft().get()
        nxt = next(rounds, None)
        if nxt is not None:
            pending.append(pool.apply_async(prepare_round, (nxt,)))
        t0 = time.perf_counter()
        with store.transaction() as tx:
            for rtype, rid, stamp, body, index in writes:
                tx.write(Write(rtype, rid, 1, stamp, "POST", body, index))
        write_s += time.perf_counter() - t0
        loaded += len(writes)
        now = time.perf_counter()
        if now - last_report > 30:
            print(f"  {have + loaded:,} resources, {loaded / (now - start):,.0f}/s")
            last_report = now
    wall = time.perf_counter() - start
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    total, _ = count_resources(db)
    stats = {"loaded": loaded, "seconds": wall, "rate": loaded / wall, "write_share": write_s / wall,
             "total": total, "bytes": db_bytes(db)}
    print(f"corpus: loaded {loaded:,} resources in {wall:.0f} s = {stats['rate']:,.0f} resources/s "
          f"(main process writing {100 * stats['write_share']:.0f}% of the time); now {total:,} resources, "
          f"{stats['bytes'] / 2**20:,.0f} MiB")
    return stats


# -- query parameters from the data ----------------------------------------------------------------

def template_codes(entries):
    """LOINC codes of Observations: (most common codes, codes that the fewest patients have)."""
    per_code, patients_with = collections.Counter(), collections.defaultdict(set)
    for rtype, _old, text in entries:
        if rtype != "Observation":
            continue
        res = json.loads(text)
        subject = res.get("subject", {}).get("reference", "")
        for c in res.get("code", {}).get("coding", []):
            if c.get("system") == LOINC and c.get("code"):
                per_code[c["code"]] += 1
                patients_with[c["code"]].add(subject)
    common = [c for c, _n in per_code.most_common(5)]
    fewest = min(len(s) for s in patients_with.values())
    rare = sorted(c for c, s in patients_with.items() if len(s) == fewest)
    return common, rare


class Fixture:
    """Per-patient parameters: id, identifier value, 3-letter name prefix, an Observation code
    that patient has and a one-year date range around one of those Observations."""

    def __init__(self, db: str, n: int, seed: int):
        conn = sqlite3.connect(db)
        rng = random.Random(seed)
        rows = conn.execute(f"{CURRENT} WHERE r.type = 'Patient' AND r.deleted = 0 ORDER BY r.rid").fetchall()
        subject = conn.execute("SELECT id FROM search_param WHERE key = 'Observation.subject'").fetchone()[0]
        rng.shuffle(rows)
        self.patients = []
        for pid, body in rows:
            if len(self.patients) >= n:
                break
            res = json.loads(body)
            ident = next((i["value"] for i in res.get("identifier", []) if i.get("system") == SYNTHEA_ID), None)
            family = next((nm.get("family") for nm in res.get("name", []) if nm.get("family")), None)
            # the patient's Observations, read straight from the reference index (not timed)
            obs = [json.loads(b) for _id, b in conn.execute(
                f"{CURRENT} JOIN idx_reference i ON i.rid = r.rid WHERE i.param = ? AND i.target_type = 'Patient' "
                "AND i.target_id = ? AND r.type = 'Observation' AND r.deleted = 0", (subject, pid))]
            dated = []
            for o in obs:
                when = o.get("effectiveDateTime", "")
                code = next((c["code"] for c in o.get("code", {}).get("coding", []) if c.get("system") == LOINC),
                            None)
                if code and len(when) >= 10:
                    dated.append((code, when[:10]))
            if not (ident and family and len(family) >= 3 and dated):
                continue
            code, day = rng.choice(dated)
            year = int(day[:4])
            self.patients.append({"id": pid, "identifier": ident, "prefix": family[:3].lower(), "code": code,
                                  "ge": f"{year}-01-01", "le": f"{year}-12-31", "n_obs": len(obs)})
        conn.close()
        if not self.patients:
            sys.exit("no patients with Observations found in the corpus")


CURRENT = "SELECT r.id, v.body FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version"


# -- the query mix ---------------------------------------------------------------------------------

def q(path: str, params: list[tuple[str, str]]) -> str:
    return f"/fhir/{path}?" + urllib.parse.urlencode(params)


def build_mix(common: list[str], rare: list[str]):
    """(name, url builder(patient dict, i)); the sorted query is handled specially (10 pages)."""
    return [
        ("Patient?identifier", lambda p, i: q("Patient", [("identifier", f"{SYNTHEA_ID}|{p['identifier']}")])),
        ("Patient?name (prefix)", lambda p, i: q("Patient", [("name", p["prefix"])])),
        ("Observation?subject&code&date", lambda p, i: q("Observation", [
            ("subject", f"Patient/{p['id']}"), ("code", f"{LOINC}|{p['code']}"),
            ("date", f"ge{p['ge']}"), ("date", f"le{p['le']}")])),
        ("Observation?subject.identifier", lambda p, i: q("Observation", [
            ("subject.identifier", f"{SYNTHEA_ID}|{p['identifier']}")])),
        ("Patient?_id&_revinclude", lambda p, i: q("Patient", [
            ("_id", p["id"]), ("_revinclude", "Observation:subject")])),
        ("Patient?_has:Observation (rare code)", lambda p, i: q("Patient", [
            ("_has:Observation:subject:code", f"{LOINC}|{rare[i % len(rare)]}"), ("_count", "10")])),
        ("Observation?code&_sort=-date", lambda p, i: q("Observation", [
            ("code", f"{LOINC}|{common[i % len(common)]}"), ("_sort", "-date"), ("_count", "10")])),
        # composites: one element instance must satisfy every component (the Observation itself, or one
        # of its components: systolic blood pressure 8480-6 is a component of the panel 85354-9)
        ("Observation?subject&code-value-quantity", lambda p, i: q("Observation", [
            ("subject", f"Patient/{p['id']}"), ("code-value-quantity", f"{LOINC}|{p['code']}$ge0")])),
        ("Observation?component-code-value-quantity", lambda p, i: q("Observation", [
            ("component-code-value-quantity", f"{LOINC}|8480-6$gt{130 + i % 20}"), ("_count", "10")])),
    ]


SORTED = "Observation?code&_sort=-date"
PAGES = 10


def with_total(url: str, total: str) -> str:
    return url + "&_total=none" if total == "none" else url


def next_link(bundle: dict) -> str | None:
    for link in bundle.get("link", []):
        if link.get("relation") == "next":
            parts = urllib.parse.urlsplit(link["url"])
            return parts.path + "?" + parts.query
    return None


class Timeout(Exception):
    pass


class Deadline:
    """A progress handler that interrupts SQLite once a request has run `seconds`
    (the request then fails and is counted as a timeout, timed as `seconds`)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.until = None

    def arm(self):
        self.until = time.perf_counter() + self.seconds

    def disarm(self):
        self.until = None

    def __call__(self):
        if self.until is not None and time.perf_counter() > self.until:
            self.until = None      # interrupt once: the store's COMMIT/ROLLBACK afterwards must run
            return 1
        return 0

    def install(self, conn):
        conn.set_progress_handler(self, 20000)


DEADLINE = Deadline(20.0)


def timed_get(client, url):
    DEADLINE.arm()
    t0 = time.perf_counter()
    try:
        r = client.get(url)
        data = r.get_data()
    finally:
        DEADLINE.disarm()
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        if dt >= DEADLINE.seconds and b"interrupted" in data or r.status_code == 500 and dt >= DEADLINE.seconds:
            raise Timeout(url)
        raise RuntimeError(f"GET {url} -> {r.status_code}: {data[:500]!r}")
    return dt, json.loads(data)


class Result:
    def __init__(self, query, total, size, label):
        self.query, self.total, self.size, self.label = query, total, size, label
        self.times: list[float] = []
        self.extra: list[float] = []       # sorted query: all 10 pages
        self.matches: list[int] = []       # Bundle.total (accurate)
        self.entries: list[int] = []       # entries in the (last) Bundle
        self.timeouts = 0

    def pct(self, p, xs=None):
        xs = sorted(self.times if xs is None else xs)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def run_query(client, name, build, fx, reps, budget, total, size, label) -> list[Result]:
    res = Result(name, total, size, label)
    pages = Result(name + f" (all {PAGES} pages)", total, size, label) if name == SORTED else None
    page1 = Result(name + " (page 1)", total, size, label) if name == SORTED else None
    if pages:
        res.query = name + f" (page {PAGES} alone)"
    start = time.perf_counter()
    n = 0
    for rep in range(reps):
        for i, p in enumerate(fx.patients):
            if n >= 3 and time.perf_counter() - start > budget:
                break
            url = with_total(build(p, rep * len(fx.patients) + i), total)
            n += 1
            if pages is None:
                try:
                    dt, bundle = timed_get(client, url)
                except Timeout:
                    res.times.append(DEADLINE.seconds)
                    res.timeouts += 1
                    continue
                res.times.append(dt)
                res.entries.append(len(bundle.get("entry", [])))
                if "total" in bundle:
                    res.matches.append(bundle["total"])
                continue
            spent, timed_out = [], False
            for page in range(PAGES):
                try:
                    dt, bundle = timed_get(client, url)
                except Timeout:
                    spent.append(DEADLINE.seconds)
                    timed_out = True
                    break
                spent.append(dt)
                for r_, cond in ((page1, page == 0), (res, page == PAGES - 1)):
                    if cond:
                        r_.entries.append(len(bundle.get("entry", [])))
                        if "total" in bundle:
                            r_.matches.append(bundle["total"])
                url = next_link(bundle)
                if url is None:
                    break
            for r_, idx in ((page1, 0), (res, PAGES - 1)):
                if len(spent) > idx:
                    r_.times.append(spent[idx])
                    if timed_out and len(spent) == idx + 1:
                        r_.timeouts += 1
            pages.times.append(sum(spent))
            if timed_out:
                pages.timeouts += 1
                if len(spent) == 1:
                    break        # the first page timed out: the later pages cannot be reached
    return ([page1, res, pages] if pages else [res])


def measure(client, mix, fx, reps, budget, size, label) -> list[Result]:
    out = []
    # warm-up: every query once (caches, lazily loaded modules)
    for name, build in mix:
        for total in ("accurate", "none"):
            try:
                timed_get(client, with_total(build(fx.patients[-1], 1), total))
            except Timeout:
                pass
    for name, build in mix:
        for total in ("accurate", "none"):
            rs = run_query(client, name, build, fx, reps, budget, total, size, label)
            out += rs
            for r in rs:
                extra = f", total {statistics.median(r.matches):,.0f}" if r.matches else ""
                extra += f", {r.timeouts} TIMEOUTS (> {DEADLINE.seconds:g} s)" if r.timeouts else ""
                entries = f"entries {statistics.median(r.entries):.0f}" if r.entries else "-"
                print(f"  {r.query:45} _total={total:8} n={len(r.times):3}  p50 {r.pct(50):9.2f} ms  "
                      f"p99 {r.pct(99):9.2f} ms  ({entries}{extra})", flush=True)
    return out


# -- SQL capture and EXPLAIN QUERY PLAN -----------------------------------------------------------

class Recorder:
    """Stands in for the store's sqlite3 connection and notes every statement."""

    def __init__(self, conn):
        self._conn = conn
        self.statements: list[tuple[str, tuple]] = []

    def execute(self, sql, args=()):
        self.statements.append((sql, tuple(args)))
        return self._conn.execute(sql, args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


CAPTURED: list = []


def capture(app, store, client, url: str, follow: int = 1):
    """Statements the store runs for `url` (and its next pages, if follow > 1)."""
    real = store._conn()
    rec = Recorder(real)
    CAPTURED[:] = []
    rec.statements = CAPTURED
    store._local.conn = rec
    try:
        for page in range(follow):
            rec.statements.append((f"-- request {page + 1}: GET {url}", ()))
            _dt, bundle = timed_get(client, url)
            url = next_link(bundle)
            if url is None:
                break
    finally:
        store._local.conn = real
    return rec.statements[:]


def plan_text(conn, sql, args) -> str:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
    depth, lines = {0: -1}, []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return "\n".join(lines)


def time_statement(conn, sql, args) -> float | None:
    """Median of 3 in ms; None if it ran past the deadline."""
    best = []
    for _ in range(3):
        DEADLINE.arm()
        t0 = time.perf_counter()
        try:
            conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "interrupt" in str(e):
                return None
            raise
        finally:
            DEADLINE.disarm()
        best.append(time.perf_counter() - t0)
        if best[-1] > 2:
            break
    return statistics.median(best) * 1000


def fmt_ms(ms) -> str:
    return f"> {DEADLINE.seconds * 1000:,.0f} ms, interrupted" if ms is None else f"{ms:.2f} ms"


def explain_mix(db, client, app, store, mix, fx) -> list[dict]:
    """For the first patient: every statement of every query with its plan and time (this state of stats)."""
    conn = sqlite3.connect(db)
    from fhirserver.search.kinds.special_kind import haversine_km
    conn.create_function("haversine_km", 4, haversine_km, deterministic=True)
    DEADLINE.install(conn)
    p = fx.patients[0]
    out = []
    for name, build in mix:
        for total in ("accurate", "none"):
            url = with_total(build(p, 0), total)
            try:
                stmts = capture(app, store, client, url, follow=PAGES if name == SORTED else 1)
            except Timeout:
                stmts = CAPTURED[:]
            items = []
            for sql, args in stmts:
                if not sql.lstrip().upper().startswith(("SELECT", "WITH", "-- ")):
                    continue        # transaction control and the audit trail's writes: not the search
                if sql.startswith("-- "):
                    items.append({"comment": sql})
                    continue
                items.append({"sql": sql, "args": list(args), "plan": plan_text(conn, sql, args),
                              "ms": time_statement(conn, sql, args)})
            out.append({"query": name, "total": total, "url": url, "statements": items})
    conn.close()
    return out


def write_plans(path, size, plans_by_label, param_names):
    # the state a running server is in comes first; the others are compared with it
    order = [STATES[k] for k in ("store", "full", "none")]
    labels = sorted(plans_by_label, key=lambda x: order.index(x) if x in order else len(order))
    main, others = labels[0], labels[1:]
    lines = [
        "# Search query plans (generated)",
        "",
        f"Generated by `bench/bench_search.py --explain` on {datetime.date.today().isoformat()} at "
        f"{size:,} resources (Synthea corpus, see bench/README.md), SQLite {sqlite3.sqlite_version}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs. Do not edit by hand: re-run the bench.",
        "",
        "For each query of the benchmark mix (first patient of the sample), every SQL statement the "
        "SQLite store ran, in order, with its bound arguments, `EXPLAIN QUERY PLAN` output and its run "
        "time re-executed alone (median of 3, fetching all rows, warm cache; statements slower than "
        f"{DEADLINE.seconds:g} s are interrupted). Planner statistics: plans are shown with {main}"
        + (" and, where they differ, with " + " and with ".join(others) if others else "") + ". "
        "The sorted query follows its `next` links to page "
        f"{PAGES}; every page's statements are listed.",
        "",
        "Search parameter ids in the arguments: " + ", ".join(f"{i} = `{k}`" for k, i in param_names) + ".",
        "",
    ]

    def statement(n, st, label):
        return [f"**Statement {n}** ({fmt_ms(st['ms'])}, {label})", "", "```sql", st["sql"], "```",
                "", f"args: `{st['args']}`", "", "```", st["plan"], "```", ""]

    for qi, entry in enumerate(plans_by_label[main]):
        lines += [f"## {entry['query']} (_total={entry['total']})", "",
                  f"`GET {urllib.parse.unquote(entry['url'])}`", ""]
        alts = [(label, plans_by_label[label][qi]["statements"]) for label in others]
        n = 0
        for si, st in enumerate(entry["statements"]):
            if "comment" in st:
                if entry["query"] == SORTED:
                    lines += [f"#### {st['comment'][3:]}", ""]
                continue
            n += 1
            lines += statement(n, st, main)
            for label, stmts in alts:
                if si < len(stmts) and "plan" in stmts[si]:
                    a = stmts[si]
                    if a["plan"] != st["plan"] or a["sql"] != st["sql"]:
                        lines += [f"With {label} ({fmt_ms(a['ms'])}):", "", "```", a["plan"], "```", ""]
                    else:
                        lines += [f"With {label}: same plan ({fmt_ms(a['ms'])}).", ""]
                elif si >= len(stmts):
                    lines += [f"With {label}: not reached (an earlier statement was interrupted).", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    print(f"wrote {path}")


# -- stats on/off ----------------------------------------------------------------------------------

STATES = {
    "none": "no statistics",
    "store": "store.analyze() (sampled)",
    "full": "full ANALYZE",
}


def drop_stats(db):
    """Remove planner statistics, and tell the store they are fresh so that it does not gather them on open."""
    conn = sqlite3.connect(db)
    for t in ("sqlite_stat1", "sqlite_stat4"):
        try:
            conn.execute(f"DELETE FROM {t}")
        except sqlite3.OperationalError:
            pass
    try:
        conn.execute("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('analyzed_at_size', "
                     "(SELECT coalesce(max(rid), 0) FROM resource))")
    except sqlite3.OperationalError:
        pass                  # a store without automatic statistics
    conn.commit()
    conn.close()


def set_stats(db, state: str) -> float:
    """Put the database into a statistics state; returns the seconds ANALYZE took."""
    drop_stats(db)
    t0 = time.perf_counter()
    if state == "store":
        from fhirserver.storage.sqlite import SqliteStore
        store = SqliteStore(db, synchronous="NORMAL")
        store.analyze()
        store.close()
    elif state == "full":
        conn = sqlite3.connect(db)
        conn.execute("ANALYZE")
        conn.commit()
        conn.close()
    return time.perf_counter() - t0


def mirror_to_mongo(db: str, url: str):
    """A MongoDB store holding the current resources of the SQLite corpus (index rows recomputed)."""
    from fhirserver.config import Settings
    from fhirserver.search.extract import extract
    from fhirserver.storage import open_store
    from fhirserver.storage.base import Write
    store = open_store(Settings(store=url))
    if hasattr(store, "client") and not url.startswith("mongomock://"):
        store.client.drop_database(store.db.name)
        store = open_store(Settings(store=url))
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT r.type, r.id, v.version, v.last_updated, v.body FROM resource r JOIN version v "
                        "ON v.rid = r.rid AND v.version = r.version WHERE r.deleted = 0 ORDER BY r.rid")
    started, n = time.perf_counter(), 0
    while batch := rows.fetchmany(1000):
        with store.transaction() as tx:
            for rtype, rid, version, stamp, body in batch:
                tx.write(Write(rtype, rid, 1, stamp, "POST", body, extract(json.loads(body), BASE)))
        n += len(batch)
    conn.close()
    print(f"mongo: {n:,} resources copied to {url} in {time.perf_counter() - started:.0f} s")
    return store


def open_app(db, store=None):
    from fhirserver import create_app
    from fhirserver.config import Settings
    from fhirserver.storage.sqlite import SqliteStore
    settings = Settings(store=f"sqlite:///{db}", base_url=BASE, sqlite_synchronous="NORMAL", log_level="WARNING",
                        auth="off")
    if store is None:
        store = SqliteStore(db, synchronous="NORMAL")
        DEADLINE.install(store._conn())
    app = create_app(settings, store)
    logging.getLogger("medport.access").setLevel(logging.WARNING)
    return app, store, app.test_client()


# -- report ----------------------------------------------------------------------------------------

def report(results: list[Result], sizes: list[int]) -> None:
    first, last = sizes[0], sizes[-1]
    labels = list(dict.fromkeys(r.label for r in results))
    print()
    print(f"In-process (Flask test client, no network hop): parameter parsing + SQL + Bundle rendering, "
          f"first page unless noted. Goal at {last:,}: p50 < {GOAL_MS:.0f} ms and p50 growth "
          f"{first:,} -> {last:,} <= {GOAL_GROWTH:.0f}x. entries: median entries in the Bundle; "
          f"matches: median Bundle.total; T/O: requests interrupted after {DEADLINE.seconds:g} s "
          f"(timed as {DEADLINE.seconds:g} s).")
    for label in labels:
        print(f"\n== {label} ==")
        print(f"{'query':45} {'_total':8} {'resources':>9} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'entries':>7} "
              f"{'matches':>8} {'T/O':>4} {'p50 ratio':>9}")
        keys = list(dict.fromkeys((r.query, r.total) for r in results if r.label == label))
        for query, total in keys:
            by = {r.size: r for r in results if r.label == label and r.query == query and r.total == total}
            for s in sizes:
                r = by.get(s)
                if r is None:
                    continue
                entries = f"{statistics.median(r.entries):.0f}" if r.entries else "-"
                matches = f"{statistics.median(r.matches):,.0f}" if r.matches else "-"
                ratio, flag = "", ""
                if s == last and first in by and first != last and r.times and by[first].times:
                    x = r.pct(50) / by[first].pct(50)
                    ratio = f"{'>' if r.timeouts else ''}{x:.1f}x"
                    if x > GOAL_GROWTH:
                        flag += " GROWS"
                if s == last and r.pct(50) > GOAL_MS:
                    flag += " SLOW"
                print(f"{query:45} {total:8} "
                      f"{s:9,} {len(r.times):4} {r.pct(50):9.2f} {r.pct(99):9.2f} {entries:>7} {matches:>8} "
                      f"{r.timeouts or '':>4} {ratio:>9}{flag}")


def parse_size(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1000, "m": 1000000}.get(s[-1:], 1)
    return int(float(s.rstrip("km")) * mult)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10k,100k,1M", help="corpus sizes to measure at, default 10k,100k,1M")
    p.add_argument("--db", help="keep the corpus in this file (reused: loading only tops it up); "
                               "default a temporary file, deleted afterwards")
    p.add_argument("--patients", type=int, default=50, help="different patients per query, default 50")
    p.add_argument("--reps", type=int, default=5, help="repetitions per patient, default 5")
    p.add_argument("--budget", type=float, default=30.0,
                   help="seconds per query and _total variant before stopping early (at least 3 runs), default 30")
    p.add_argument("--stats", default="none,store,full",
                   help="planner-statistics states to measure in, comma-separated: none (no sqlite_stat1), "
                        "store (SqliteStore.analyze(), sampled), full (plain ANALYZE); default all three")
    p.add_argument("--explain", action="store_true", help=f"write {os.path.relpath(PLANS_DOC, REPO)} at the last size")
    p.add_argument("--json", help="also write all timings to this JSON file")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="interrupt a request's SQL after this many seconds (counted as a timeout), default 20")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mongo", metavar="URL",
                   help="also measure on a MongoDB store (mongodb://host/db, or mongomock://localhost/db)")
    args = p.parse_args(argv)
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    DEADLINE.seconds = args.timeout

    logging.disable(logging.CRITICAL)   # access log lines and the tracebacks of interrupted requests
    tmpdir = None
    db = args.db
    if not db:
        tmpdir = tempfile.mkdtemp(prefix="medport-bench-search-")
        db = os.path.join(tmpdir, "corpus.db")
    entries, types = read_templates(BUNDLE_DIR)
    common, rare = template_codes(entries)
    mix = build_mix(common, rare)
    print(f"bundles: {BUNDLE_DIR}: {len(entries):,} resources per round "
          f"({sum(1 for t, _o, _x in entries if t == 'Patient')} patients); common codes {common}, "
          f"rare codes {rare}")
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(2, initializer=_init_worker, initargs=(BUNDLE_DIR, BASE))
    results, loads, plans = [], [], {}
    measured = []
    try:
        for target in sizes:
            st = grow(db, target, pool, entries, types)
            if st:
                loads.append(st)
            size, _ = count_resources(db)
            if size in measured:
                continue
            measured.append(size)
            print(f"\n== {size:,} resources, {db_bytes(db) / 2**20:,.0f} MiB ==")
            states = [STATES[x.strip()] for x in args.stats.split(",")]
            fx = None
            for label in states:
                state = next(k for k, v in STATES.items() if v == label)
                took = set_stats(db, state)
                if state != "none":
                    print(f"{label}: {took:.1f} s")
                app, store, client = open_app(db)
                if fx is None:
                    fx = Fixture(db, args.patients, args.seed)
                    print(f"{len(fx.patients)} patients sampled; median {statistics.median(x['n_obs'] for x in fx.patients):.0f} "
                          "Observations each")
                print(f"-- {label}")
                results += measure(client, mix, fx, args.reps, args.budget, size, label)
                if args.explain and target == sizes[-1]:
                    plans[label] = explain_mix(db, client, app, store, mix, fx)
                store.close()
            if args.mongo:
                label = "MongoDB (mongomock: code path only)" if args.mongo.startswith("mongomock") else "MongoDB"
                _app, store, client = open_app(db, mirror_to_mongo(db, args.mongo))
                print(f"-- {label}")
                results += measure(client, mix, fx, args.reps, args.budget, size, label)
        pool.close()
        report(results, measured)
        for st in loads:
            print(f"load: {st['loaded']:,} resources at {st['rate']:,.0f}/s -> {st['total']:,} resources, "
                  f"{st['bytes'] / 2**20:,.0f} MiB")
        print(f"({os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
              f"corpus {db}{' (temporary)' if tmpdir else ''})")
        if plans:
            conn = sqlite3.connect(db)
            wanted = ["Patient.identifier", "Patient.name", "Observation.subject", "Observation.code",
                      "Observation.date", "Observation.patient", "Patient.identifier:of-type",
                      "Observation.value-quantity", "Observation.component-code", "Observation.component-value-quantity"]
            ids = dict(conn.execute("SELECT key, id FROM search_param").fetchall())
            conn.close()
            write_plans(PLANS_DOC, measured[-1], plans, [(k, ids[k]) for k in wanted if k in ids])
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"loads": loads, "results": [
                    {"query": r.query, "total": r.total, "size": r.size, "label": r.label,
                     "times_ms": [t * 1000 for t in r.times], "matches": r.matches} for r in results]}, f)
    finally:
        pool.terminate()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
