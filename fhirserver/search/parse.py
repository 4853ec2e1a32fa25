"""Parse search parameters into a query tree (http://hl7.org/fhir/R4/search.html).

This first version understands _id and token `identifier`, enough for the
conditional interactions; other parameters are rejected as unknown (400), or
ignored with `Prefer: handling=lenient` (search.html#errors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..definitions import search_parameters
from ..errors import BadRequest
from . import query as q

# Parameters about the result set rather than the match (search.html#return).
RESULT_PARAMS = {"_count", "_cursor", "_format", "_pretty"}


@dataclass
class ParsedSearch:
    query: q.And
    count: int | None = None
    cursor: str | None = None
    used: list[tuple[str, str]] = field(default_factory=list)   # echoed in the self link


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split on `sep` not preceded by a backslash; unescape \\, \\| \\$ (search.html#escaping)."""
    parts, cur, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            cur.append(value[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in "\\|$,":
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def parse_token(param: str, raw: str) -> q.TokenEq:
    pieces = split_unescaped(raw, "|")
    if len(pieces) == 1:
        return q.TokenEq(param, None, unescape(pieces[0]))
    if len(pieces) == 2:
        system, code = unescape(pieces[0]), unescape(pieces[1])
        return q.TokenEq(param, system, code if code != "" else None)
    raise BadRequest(f"Invalid token value {raw!r} for '{param}': use [system]|[code]")


def parse_search(type: str, params: list[tuple[str, str]], lenient: bool = False) -> ParsedSearch:
    clauses, out = [], ParsedSearch(q.And(()))
    known = search_parameters().get(type, {})
    for name, value in params:
        if name == "_count":
            try:
                out.count = int(value)
                if out.count < 0:
                    raise ValueError
            except ValueError:
                raise BadRequest(f"_count must be a non-negative integer, got {value!r}") from None
        elif name == "_cursor":
            out.cursor = value
            continue
        elif name in ("_format", "_pretty"):
            continue
        elif name == "_id":
            ids = tuple(unescape(v) for v in split_unescaped(value, ","))
            clauses.append(q.IdIn(ids))
        elif name == "identifier" and "identifier" in known:
            clauses.append(q.Or(tuple(parse_token(name, v) for v in split_unescaped(value, ","))))
        elif lenient:
            continue
        else:
            raise BadRequest(f"Unknown or unsupported search parameter '{name}' for {type}")
        if any(v == "" for v in split_unescaped(value, ",")) and name != "_count":
            raise BadRequest(f"Empty value in search parameter '{name}'")
        out.used.append((name, value))
    out.query = q.And(tuple(clauses))
    return out
