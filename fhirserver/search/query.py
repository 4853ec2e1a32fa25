"""The backend-neutral query tree that every store compiles natively.

A query is a conjunction of clauses; each clause is a disjunction of
conditions (search.html#combining: repeated parameters AND, commas OR).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdIn:
    """_id: the logical id is one of `ids`."""
    ids: tuple[str, ...]


@dataclass(frozen=True)
class TokenEq:
    """A token parameter equals [system|]code. system None: any system;
    system "": no system (|code); code None: any code in the system (system|)."""
    param: str
    system: str | None
    code: str | None


@dataclass(frozen=True)
class Or:
    parts: tuple


@dataclass(frozen=True)
class And:
    parts: tuple


MATCH_ALL = And(())
