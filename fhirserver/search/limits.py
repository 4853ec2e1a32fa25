"""Cost limits of searches (http://hl7.org/fhir/R4/search.html#errors: a server may refuse a search
it finds too costly; issue type `too-costly`, http://hl7.org/fhir/R4/valueset-issue-type.html).

Two kinds of bound, so that no small request can stall the server:

- **Size**, checked while parsing, before anything runs: parameters per query, values per
  parameter, the characters of a value, chain / _has depth, target types an untyped chain may
  fan out to, and the number of query-tree nodes (search/query.py) of the whole query; the GET
  entries of one batch or transaction Bundle share a node budget. Each refusal is a 400 naming
  the limit and how to narrow the query.
- **Time**, inside the store: a deadline for the statements of one search (SQLite: a progress
  handler aborts the running statement; MongoDB: maxTimeMS), answered 503 with Retry-After.
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass

from ..config import Settings
from ..errors import SearchTimedOut, TooCostly
from . import query as q


@dataclass(frozen=True)
class SearchLimits:
    """The limits of fhirserver/config.py (MEDPORT_SEARCH_*, MEDPORT_BUNDLE_MAX_SEARCH_NODES)."""
    max_params: int             # parameters of one query (criteria and result parameters)
    max_values: int             # comma-separated values of one parameter
    max_chain_depth: int        # chained and _has links, nested
    max_chain_targets: int      # target types one untyped chain link may fan out to
    max_nodes: int              # query-tree nodes of one query
    max_bundle_nodes: int       # query-tree nodes of the GET entries of one Bundle, in all

    @classmethod
    def from_settings(cls, settings) -> "SearchLimits":
        return cls(max_params=settings.search_max_params, max_values=settings.search_max_values,
                   max_chain_depth=settings.search_max_chain_depth,
                   max_chain_targets=settings.search_max_chain_targets, max_nodes=settings.search_max_nodes,
                   max_bundle_nodes=settings.bundle_max_search_nodes)


DEFAULT_LIMITS = SearchLimits.from_settings(Settings())     # where no settings reach (internal lookups)

# Characters of one value (between commas) and of a parameter's whole value. Fixed, not settings: they
# keep every value inside what each store takes (SQLite refuses a LIKE pattern past 50,000 bytes;
# 4,096 characters are at most 16 KiB of UTF-8 after folding), and no legitimate value comes near.
MAX_VALUE_CHARS = 4096
MAX_PARAM_CHARS = 16384


def check_length(name: str, value: str, alternatives: list[str] | tuple = ()) -> None:
    """400 too-costly for a parameter value (or one of its comma-separated `alternatives`) past the bounds."""
    if len(value) > MAX_PARAM_CHARS or any(len(a) > MAX_VALUE_CHARS for a in alternatives):
        raise TooCostly(f"'{name[:100]}' has a value of {len(value)} characters; this server takes at most "
                        f"{MAX_VALUE_CHARS} characters per value and {MAX_PARAM_CHARS} per parameter. "
                        "Search for a shorter value")


def size(node) -> int:
    """Query-tree nodes of `node` (every And, Or, Not, Chain, Has and leaf counts one)."""
    if isinstance(node, (q.And, q.Or)):
        return 1 + sum(size(p) for p in node.parts)
    if isinstance(node, (q.Chain, q.Has, q.Not)):
        return 1 + size(node.node)
    return 1


class NodeBudget:
    """Counts nodes as the parser makes them and refuses the query once past the limit, so a
    hostile query is stopped before its tree is ever built whole."""

    def __init__(self, limit: int, what: str = "This search"):
        self.limit, self.used, self.what = limit, 0, what

    def charge(self, n: int, where: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise TooCostly(
                f"{self.what} is too costly: it expands to more than {self.limit} query nodes "
                f"(reached at '{where}'). Narrow it: fewer values or parameters, name the target type "
                f"of chains (e.g. subject:Patient.name), or shorter chains")


# ---- time ---------------------------------------------------------------------------------------

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("medport_search_deadline", default=None)
_shared: contextvars.ContextVar[float | None] = contextvars.ContextVar("medport_shared_deadline", default=None)
_now = time.monotonic
PROGRESS_STEPS = 10000      # SQLite virtual-machine steps between two deadline checks


def _until(ms: int, outer: float | None) -> float | None:
    deadline = None if ms <= 0 else _now() + ms / 1000.0
    if outer is not None:
        deadline = outer if deadline is None else min(outer, deadline)
    return deadline


@contextlib.contextmanager
def time_limit(ms: int):
    """The store's statements inside this block must end within `ms` milliseconds of its start
    (0: no limit), and before the deadline of an enclosing shared_time_limit."""
    token = _deadline.set(_until(ms, _shared.get()))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def shared_time_limit(ms: int):
    """One budget for every search inside this block (a batch's GET entries, a system search over
    several types); it applies only within their time_limit blocks, so writes never meet it."""
    token = _shared.set(_until(ms, _shared.get()))
    try:
        yield
    finally:
        _shared.reset(token)


@contextlib.contextmanager
def paused():
    """Server work done on a request's behalf that is not its search (the shipped definitions put in
    place on first use: conformance/served.py) runs without the request's deadlines, and the time it
    takes is not counted against them."""
    start, outer = _now(), (_deadline.get(), _shared.get())
    tokens = (_deadline.set(None), _shared.set(None))
    try:
        yield
    finally:
        _shared.reset(tokens[1])
        _deadline.reset(tokens[0])
        spent = _now() - start
        if outer[0] is not None:
            _deadline.set(outer[0] + spent)
        if outer[1] is not None:
            _shared.set(outer[1] + spent)


def expired() -> bool:
    deadline = _deadline.get()
    return deadline is not None and _now() >= deadline


def progress_check() -> int:
    """sqlite3 progress handler: non-zero aborts the running statement (SQLITE_INTERRUPT)."""
    return 1 if expired() else 0


def remaining_ms() -> int | None:
    """Milliseconds left for the next statement (MongoDB maxTimeMS), None without a deadline;
    SearchTimedOut when none are left."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    left = int((deadline - _now()) * 1000)
    if left <= 0:
        raise timed_out()
    return left


def timed_out() -> SearchTimedOut:
    return SearchTimedOut("The search ran past this server's time limit and was stopped. Narrow it "
                          "(a more selective parameter, fewer values, no untyped chains) or retry later",
                          headers={"Retry-After": "5"})
