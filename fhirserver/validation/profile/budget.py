"""A time budget for one validation (issue 20: validation must not make writes slow, and $validate is open
to every caller). FHIRPath invariants are evaluated by fhirpathpy, whose cost an expression and its data
decide: R4's own sdf-8 is quadratic in a StructureDefinition's elements (4,000 took 44 s), an
administrator's constraint can be cubic. Every step of fhirpathpy's evaluator (engine.do_eval) and every
invariant the walker asks checks the clock; past the deadline OverBudget ends the validation, which
check() reports as an error (the resource is not known to conform), never as a pass. Lookups bounds the
distinct definitions one walk looks up (each a store query) the same way.

    with budget():          # nested budgets share the outermost deadline (write_policy.evaluate: all profiles)
        ...
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

SECONDS = 10.0          # a 10,000-entry Bundle validates in ~4 s
MAX_LOOKUPS = 1000      # distinct definitions one walk looks up (10,000 distinct claims or extensions cost seconds)
_local = threading.local()


class OverBudget(BaseException):
    """The validation's time is spent. A BaseException: the engine's and the walker's "could not be
    evaluated" handlers (except Exception) must not read it as a failed expression."""


@contextmanager
def budget(seconds: float | None = None):
    outer = getattr(_local, "deadline", None)
    if outer is None:
        _local.deadline = time.monotonic() + (SECONDS if seconds is None else seconds)
    try:
        yield
    finally:
        if outer is None:
            _local.deadline = None


def check() -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise OverBudget


def install() -> None:
    """Make every step of fhirpathpy's evaluator check the budget (once per process)."""
    from fhirpathpy import engine
    original = getattr(engine, "do_eval", None)
    if original is None or getattr(original, "medport_budget", False):
        return      # another fhirpathpy: the budget is still checked between invariants and slice items

    def do_eval(ctx, parent, node):
        check()
        return original(ctx, parent, node)
    do_eval.medport_budget = True
    engine.do_eval = do_eval


class Lookups:
    """resolve() remembered for one walk and bounded to MAX_LOOKUPS distinct (type, canonical) pairs; past
    that it answers None and `refused` is set (check() then says the resource was not validated in full)."""

    def __init__(self, resolve):
        self.resolve, self.seen, self.refused = resolve, {}, False

    def __call__(self, rtype: str, canonical: str):
        key = (rtype, canonical)
        if key not in self.seen:
            if len(self.seen) >= MAX_LOOKUPS:
                self.refused = True
                return None
            self.seen[key] = self.resolve(rtype, canonical)
        return self.seen[key]
