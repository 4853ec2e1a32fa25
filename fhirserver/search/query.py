"""The backend-neutral query tree that every store compiles natively.

A search is an And of clauses; a clause is an Or of alternatives
(search.html#combining: repeated parameters AND, commas OR). Leaves test the
index rows of one parameter (`key`, e.g. 'Observation.code') with a condition
from that parameter type's module (search/kinds).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class IdIn:
    """_id: the logical id is one of `ids`."""
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """Some index row of parameter `key` (in the `kind` table) satisfies `cond`."""
    kind: str
    key: str
    cond: object


@dataclass(frozen=True)
class Missing:
    """:missing=true (no row for any of `keys`) or :missing=false (some row)."""
    keys: tuple[tuple[str, str], ...]      # (kind, key)
    missing: bool


@dataclass(frozen=True)
class Not:
    node: object


@dataclass(frozen=True)
class Composite:
    """One element instance (same row group) satisfies every component condition."""
    key: str
    parts: tuple[tuple[str, object], ...]  # (kind, cond) for component i, rows under key#i


@dataclass(frozen=True)
class Chain:
    """A reference of parameter `key` points at a `target_type` resource matching `node`. The access
    guard applies to the targets too, unless `guarded` is False: the access policy's own nodes
    (governance/policy.py) look at Patients and Consents the caller may not see."""
    key: str
    target_type: str
    node: object
    guarded: bool = True


@dataclass(frozen=True)
class Has:
    """Some `source_type` resource matching `node` refers to this one through parameter `key`."""
    source_type: str
    key: str
    node: object
    guarded: bool = True               # False: the sources are not restricted by the guard (see Chain)


@dataclass(frozen=True)
class Or:
    parts: tuple


@dataclass(frozen=True)
class And:
    parts: tuple


MATCH_ALL = And(())


class _Deny:
    """Matches nothing: what a guard returns for a type the caller may not see at all."""

    def __repr__(self):
        return "DENY"


DENY = _Deny()


@contextlib.contextmanager
def unguarded(compiler, node):
    """Compile or evaluate a Chain or Has whose `guarded` is False with the compiler's guard switched
    off (the access policy's own nodes look past it); any other node as it is."""
    saved = compiler.guard
    if not getattr(node, "guarded", True):
        compiler.guard = None
    try:
        yield
    finally:
        compiler.guard = saved
