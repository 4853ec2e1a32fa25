"""Identifier systems whose values have one canonical form (the UHID: dashes and spaces optional).

A search for `identifier=[system]|[value]` under such a system reads the value in any form the
user may type and looks up the canonical one, which is the only form stored; a value that is not
valid for the system is a 400 naming it, not an empty result. The server registers its UHID
system at start-up (fhirserver.context)."""
from __future__ import annotations

from typing import Callable

from ..errors import BadRequest

_CANONICAL: dict[str, Callable[[str], str]] = {}


def register(system: str, canonical: Callable[[str], str]) -> None:
    """canonical(value) -> the stored form; raises ValueError with a clear message if invalid."""
    _CANONICAL[system] = canonical


def canonical(system: str | None, value: str | None, param: str) -> str | None:
    to_canonical = _CANONICAL.get(system) if system else None
    if to_canonical is None or value is None:
        return value
    try:
        return to_canonical(value)
    except ValueError as e:
        raise BadRequest(f"Search parameter '{param}': {e}") from None
