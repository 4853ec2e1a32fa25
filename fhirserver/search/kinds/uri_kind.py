"""uri (search.html#uri): exact match by default; :below matches the value and
every URI under it (path prefix), :above every URI the value is under.
Rows are (value,).
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import BadRequest
from ..normalize import prefix_upper_bound
from ..parse_util import unescape
from .string_kind import mongo_prefix

COLUMNS = ("value",)
LOOKUP = [("value",)]   # store indexes: (param, *cols)
SORT_COLUMNS = {"asc": "value", "desc": "value"}


@dataclass(frozen=True)
class UriCond:
    mode: str            # exact | below | above
    value: str
    ancestors: tuple[str, ...] = ()


def rows(values, param) -> list[tuple]:
    out = []
    for value, _typ in values:
        if isinstance(value, str):
            out.append((value,))
        elif isinstance(value, dict) and isinstance(value.get("reference"), str):   # canonical as Reference
            out.append((value["reference"],))
    return list(dict.fromkeys(out))


def _ancestors(uri: str) -> tuple[str, ...]:
    """'http://a/b/c' -> ('http://a/b/c', 'http://a/b', 'http://a')."""
    out, cur = [uri], uri
    while "/" in cur.rstrip("/") and not cur.endswith("//"):
        cur = cur.rstrip("/").rsplit("/", 1)[0]
        if cur.endswith(":/") or cur.endswith(":") or cur == "":
            break
        out.append(cur)
    return tuple(out)


def parse(param, modifier: str, raw: str):
    value = unescape(raw)
    if modifier in ("", "below", "above"):
        return UriCond(modifier or "exact", value, _ancestors(value) if modifier == "above" else ())
    raise BadRequest(f"Unknown modifier :{modifier} for uri parameter '{param.code}'")


def sql(cond, a: str):
    if cond.mode == "below":
        return (f"({a}.value = ? OR ({a}.value >= ? AND {a}.value < ?))",
                [cond.value, cond.value.rstrip("/") + "/", prefix_upper_bound(cond.value.rstrip("/") + "/")])
    if cond.mode == "above":
        return f"{a}.value IN ({', '.join('?' * len(cond.ancestors))})", list(cond.ancestors)
    return f"{a}.value = ?", [cond.value]


def match(cond, row) -> bool:
    (value,) = row
    if cond.mode == "below":
        return value == cond.value or value.startswith(cond.value.rstrip("/") + "/")
    if cond.mode == "above":
        return value in cond.ancestors
    return value == cond.value


def mongo(cond) -> dict:
    """match() as a MongoDB filter on one index element (field value)."""
    if cond.mode == "below":
        return {"$or": [{"value": {"$eq": cond.value}}, {"value": mongo_prefix(cond.value.rstrip("/") + "/")}]}
    if cond.mode == "above":
        return {"value": {"$in": list(cond.ancestors)}}
    return {"value": {"$eq": cond.value}}
