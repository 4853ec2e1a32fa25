"""A time budget for one validation (issue 20: validation must not make writes slow, and $validate is open
to every caller). FHIRPath invariants are evaluated by fhirpathpy, whose cost an expression and its data
decide: R4's own sdf-8 is quadratic in a StructureDefinition's elements (4,000 took 44 s), an
administrator's constraint can be cubic. Every step of fhirpathpy's evaluator (engine.do_eval) and every
invariant the walker asks checks the clock; past the deadline OverBudget ends the validation, which
check() reports as an error (the resource is not known to conform), never as a pass.

    with budget():          # nested budgets share the outermost deadline (write_policy.evaluate: all profiles)
        ...
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

SECONDS = 10.0          # a 10,000-entry Bundle validates in ~4 s
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
    original = engine.do_eval
    if getattr(original, "medport_budget", False):
        return

    def do_eval(ctx, parent, node):
        check()
        return original(ctx, parent, node)
    do_eval.medport_budget = True
    engine.do_eval = do_eval
