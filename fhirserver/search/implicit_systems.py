"""The implicit code system of a `code` element (search.html#token: for the data type code, "the
system is implicit", the one of the element's value set binding). `Patient?gender=
http://hl7.org/fhir/administrative-gender|male` finds a Patient whose gender is `male`, although the
resource (and so its index row) names no system. Which parameters have one is data
(profiles/token-code-systems.json, built by build_code_systems.py from the R4 definitions).

The query is widened while it is parsed, so every store and the matcher answer it alike: system|code
becomes the IN-set condition of :in (kinds/token_kind.CodeIn), which matches the pair and a row
without a system by its code; system| becomes "has a value". Another system matches nothing, as before.
"""
from __future__ import annotations

import functools

from ..definitions import load_json
from . import query as q
from .kinds import token_kind


@functools.lru_cache(maxsize=1)
def _systems() -> dict[str, str]:
    return load_json("token-code-systems.json")


def implicit_system(param_key: str) -> str | None:
    return _systems().get(param_key)


def widen(param, cond):
    """The leaf for a parsed token condition `cond` of `param`, its implicit system taken into account."""
    if isinstance(cond, token_kind.Code) and cond.system and cond.system == implicit_system(param.key):
        if cond.code is None:
            return q.Missing(((param.kind, param.key),), False)
        return q.Match("token", param.key, token_kind.CodeIn(frozenset({(cond.system, cond.code)})))
    return q.Match("token", param.key, cond)
