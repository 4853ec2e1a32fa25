"""A sorted search that walks its date sort index stops where no match can sort any more
(sqlite_search._walk_stop, ranges.sort_bound), and never starts later than the first resource:
a resource sorts at its smallest start (largest end), so one whose Period straddles the query's
date, or with a second date that matches, sorts before the date and must still be found.

Every query is paged through with a cursor under the walk (WALK_MIN = 0) and under the planner's
direct sort, and compared with the matcher page by page."""
from __future__ import annotations

import random
import tempfile

import pytest

from fhirserver.config import Settings
from fhirserver.search.extract import extract
from fhirserver.search.kinds import ranges
from fhirserver.search.matcher import Matcher
from fhirserver.search.parse import parse_search
from fhirserver.storage import open_store, sqlite_search
from fhirserver.storage.base import Write

BASE = "http://fhir.test/fhir"
DAYS = ["2026-12-05", "2026-12-06", "2026-12-07", "2026-12-08", "2026-12-09"]
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


def _when(rng: random.Random) -> str:
    day = rng.choice(DAYS)
    return rng.choice([day, f"{day}T10:00:00Z", f"{day}T23:59:59Z", day[:7], f"{day}T00:00:00Z"])


def _scheduled(rng: random.Random) -> dict:
    kind = rng.randrange(4)
    if kind == 0:       # a Period that may straddle any of the days, or be open at one end
        a, b = sorted([_when(rng), _when(rng)])
        return {"scheduledPeriod": {k: v for k, v in (("start", a), ("end", b)) if rng.random() < 0.85}
                or {"start": a}}
    if kind == 1:
        return {"scheduledTiming": {"event": [_when(rng) for _ in range(rng.randint(1, 2))]}}
    return {"scheduledPeriod": {"start": (w := _when(rng)), "end": w}}


def careplans(n: int, seed: int) -> list[dict]:
    """CarePlan.activity-date: several values per resource (one per activity), Periods and Timings."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = {"resourceType": "CarePlan", "id": f"c{i:03d}", "status": "active", "intent": "plan",
             "subject": {"reference": "Patient/p"}}
        activities = rng.choice([0, 1, 1, 1, 2, 3])
        if activities:
            c["activity"] = [{"detail": {"status": "scheduled", **_scheduled(rng)}} for _ in range(activities)]
        out.append(c)
    # exact ties on both columns, and one Period straddling every day (sorts first, matches ge the last day)
    out += [{"resourceType": "CarePlan", "id": f"tie{i}", "status": "active", "intent": "plan",
             "subject": {"reference": "Patient/p"},
             "activity": [{"detail": {"status": "scheduled", "scheduledPeriod": {
                 "start": "2026-12-07T10:00:00Z", "end": "2026-12-07T10:00:00Z"}}}]} for i in range(3)]
    out.append({"resourceType": "CarePlan", "id": "straddle", "status": "active", "intent": "plan",
                "subject": {"reference": "Patient/p"}, "activity": [{"detail": {
                    "status": "scheduled", "scheduledPeriod": {"start": "2026-12-01", "end": "2026-12-31"}}}]})
    return out


@pytest.fixture(scope="module")
def loaded():
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Settings(store=f"sqlite:///{d}/walk.db", sqlite_synchronous="NORMAL"))
        matcher = Matcher(BASE)
        with store.transaction() as tx:
            for r in careplans(80, seed=11):
                tx.write(Write("CarePlan", r["id"], 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}",
                               extract(r, BASE)))
                matcher.put(r)
        yield store, matcher
        store.close()


def _pages(store, parsed, size: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = store.search("CarePlan", parsed.query, sort=parsed.results.sort, limit=size, cursor=cursor,
                            total="none")
        pages.append([v.id for v in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def _queries():
    out = []
    for sort in ("activity-date", "-activity-date", "activity-date,-_id", "-activity-date,status"):
        for prefix in PREFIXES:
            for day in ("2026-12-07", "2026-12", "2026-12-07T10:00:00Z"):
                out.append([("activity-date", prefix + day), ("_sort", sort)])
        out.append([("activity-date", "ge2026-12-07"), ("activity-date", "lt2026-12-09"), ("_sort", sort)])
        out.append([("activity-date", "gt2026-12-06"), ("activity-date", "le2026-12-08"), ("_sort", sort)])
        out.append([("activity-date", "lt2026-12-06,ge2026-12-09"), ("_sort", sort)])
        out.append([("activity-date", "eq2026-12-07,gt2026-12-08"), ("_sort", sort)])
        out.append([("activity-date", "le2026-12-07"), ("activity-date:missing", "false"), ("_sort", sort)])
        out.append([("activity-date:missing", "true"), ("_sort", sort)])
    return out


@pytest.mark.parametrize("params", _queries(), ids=lambda p: "&".join(f"{k}={v}" for k, v in p))
def test_walk_pages_equal_direct_sort_and_matcher(loaded, monkeypatch, params):
    store, matcher = loaded
    parsed = parse_search("CarePlan", params, base=BASE)
    want = matcher.search("CarePlan", parsed.query, parsed.results.sort)
    monkeypatch.setattr(sqlite_search, "WALK_MIN", 10 ** 9)      # every sorted search sorts directly
    direct = {size: _pages(store, parsed, size) for size in (1, 3, 7)}
    monkeypatch.setattr(sqlite_search, "WALK_MIN", 0)            # every sorted search walks its index
    for size, pages in direct.items():
        walked = _pages(store, parsed, size)
        assert walked == pages, (params, size)
        assert [i for p in walked for i in p] == want, (params, size)


def test_straddling_period_sorts_before_the_date_and_is_found(loaded, monkeypatch):
    store, _matcher = loaded
    monkeypatch.setattr(sqlite_search, "WALK_MIN", 0)
    parsed = parse_search("CarePlan", [("activity-date", "ge2026-12-30"), ("_sort", "activity-date")], base=BASE)
    ids = [v.id for v in store.search("CarePlan", parsed.query, sort=parsed.results.sort, limit=50).items]
    assert "straddle" in ids


def _walk_statements(store, params, monkeypatch) -> list[str]:
    monkeypatch.setattr(sqlite_search, "WALK_MIN", 0)
    conn = store._conn()
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        parsed = parse_search("CarePlan", params, base=BASE)
        store.search("CarePlan", parsed.query, sort=parsed.results.sort, limit=500, total="none")
    finally:
        conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().startswith("SELECT r.rid") and "v.version" not in s]   # not the bodies


def _plan(store, sql: str) -> str:
    return "\n".join(row[-1] for row in store._conn().execute(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.parametrize("params, column", [
    ([("activity-date", "ge2026-12-06"), ("activity-date", "lt2026-12-08"), ("_sort", "activity-date")], "low<"),
    ([("activity-date", "ge2026-12-06"), ("activity-date", "lt2026-12-08"), ("_sort", "-activity-date")], "high>"),
])
def test_walk_is_an_index_range_that_ends_at_the_bound(loaded, monkeypatch, params, column):
    """The walk's statement seeks a bounded range of the (param, low|high) index; resources without
    a value are not looked for (the date clauses need one)."""
    store, _matcher = loaded
    statements = _walk_statements(store, params, monkeypatch)
    assert len(statements) == 1, statements
    plan = _plan(store, statements[0])
    walk = plan.splitlines()[0]          # the outer loop: the sort index, from the parameter's start to the bound
    assert walk.startswith("SEARCH w USING") and walk.endswith(f"(param=? AND {column}?)"), plan


def test_walk_without_a_bound_reads_on_and_looks_for_missing_values(loaded, monkeypatch):
    store, _matcher = loaded
    statements = _walk_statements(store, [("activity-date", "ge2026-12-06"), ("_sort", "activity-date")],
                                  monkeypatch)
    assert len(statements) == 1 and "low<" not in _plan(store, statements[0])
    statements = _walk_statements(store, [("status", "active"), ("_sort", "activity-date")], monkeypatch)
    assert len(statements) == 2, statements        # the walk, then the resources without a value


def test_walk_visits_only_rows_up_to_the_bound(loaded, monkeypatch):
    """Index rows the walk reads, counted by a function in its statement: with `lt` on the sort
    parameter it reads the rows before the bound only."""
    store, _matcher = loaded
    conn = store._conn()
    visited: list[int] = []
    conn.create_function("medport_test_visit", 1, lambda v: visited.append(v) or 1)
    original = sqlite_search._page_rows

    def counting(conn_, where, args, terms, values, limit, source="resource r"):
        if source.startswith(f"{sqlite_search.table('date')} w "):
            where = f"{where} AND medport_test_visit(w.low)"
        return original(conn_, where, args, terms, values, limit, source)

    monkeypatch.setattr(sqlite_search, "_page_rows", counting)
    monkeypatch.setattr(sqlite_search, "WALK_MIN", 0)
    parsed = parse_search("CarePlan", [("activity-date", "lt2026-12-06"), ("_sort", "activity-date")], base=BASE)
    store.search("CarePlan", parsed.query, sort=parsed.results.sort, limit=500, total="none")
    bound = ranges.sort_bound("lt", *_range("2026-12-06"), descending=False)
    assert visited and all(v < bound[1] for v in visited)
    everything = conn.execute("SELECT count(DISTINCT rid) FROM idx_date WHERE param = ?",
                              [store._param_ids.load(conn)["CarePlan.activity-date"]]).fetchone()[0]
    assert len(visited) < everything


def _range(text: str) -> tuple[int, int]:
    from fhirserver.search.kinds.date_kind import date_range
    return date_range(text)


@pytest.mark.parametrize("prefix", PREFIXES[1:])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_bound_holds_for_every_matching_row(prefix, descending):
    """Exhaustively on small integers: every row [low, high] that the rule table matches meets the bound."""
    for lo, hi in [(3, 3), (3, 5)]:
        bound = ranges.sort_bound(prefix, lo, hi, descending)
        for low in range(0, 9):
            for high in range(low, 9):
                if not ranges.match(prefix, lo, hi, low, high):
                    continue
                if bound is None:
                    continue
                op, v = bound
                x = high if descending else low
                assert {"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[op], (prefix, lo, hi, low, high)
