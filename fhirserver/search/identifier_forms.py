"""Identifier systems whose values have one canonical form (the UHID: dashes and spaces optional).

A search for `identifier=[system]|[value]` under such a system reads the value in any form the
user may type and looks up the canonical one, which is the only form stored; a value that is not
valid for the system is a 400 naming it, not an empty result.

The forms belong to one server (its ServerContext: the UHID system pinned by its store), never to
the process: two apps in one process with different UHID systems each read only their own. The
forms of the server handling a request are active for that request (app.py sets them on the
request's context variable; ServerContext.forms() for work outside a request)."""
from __future__ import annotations

import contextlib
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Callable, Mapping

from ..errors import BadRequest

Forms = Mapping[str, Callable[[str], str]]     # system -> canonical(value), raising ValueError if invalid

_ACTIVE: ContextVar[Forms] = ContextVar("medport_identifier_forms", default=MappingProxyType({}))


def activate(forms: Forms) -> Token:
    """Make `forms` the active ones in this context (a request); undo with deactivate(token)."""
    return _ACTIVE.set(forms)


def deactivate(token: Token) -> None:
    _ACTIVE.reset(token)


@contextlib.contextmanager
def active(forms: Forms):
    token = activate(forms)
    try:
        yield
    finally:
        deactivate(token)


def canonical(system: str | None, value: str | None, param: str) -> str | None:
    to_canonical = _ACTIVE.get().get(system) if system else None
    if to_canonical is None or value is None:
        return value
    try:
        return to_canonical(value)
    except ValueError as e:
        raise BadRequest(f"Search parameter '{param}': {e}") from None
