"""reference (search.html#reference): rows are (target_type, target_id, url).

Local references (relative, or absolute under this server's base URL) index as
type and id, so chains and _include can join them to their targets; other
absolute URLs, urn:uuid: and canonicals index as url. Reference.identifier is
indexed as token rows under '<param>:identifier' for the :identifier modifier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ...definitions import resource_types
from ...errors import BadRequest
from ..parse_util import unescape

COLUMNS = ("target_type", "target_id", "url")
LOOKUP = [("target_id", "target_type", "rid"), ("url",)]   # store indexes: (param, *cols)
SORT_COLUMNS = {"asc": "target_id", "desc": "target_id"}
IDENTIFIER = ":identifier"
_LOCAL = re.compile(r"^(?:(?P<base>.*)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(frozen=True)
class RefCond:
    target_type: str | None    # None: any type
    target_id: str | None
    url: str | None = None


@dataclass(frozen=True)
class RefIn:
    """A reference to a `target_type` resource whose id is one of `target_ids` (None: any id of that type).
    Not written by clients: the access policy's lists (governance/policy.py), one IN (...) in SQL."""
    target_type: str
    target_ids: tuple[str, ...] | None


def split_reference(ref: str, base: str) -> tuple[str | None, str | None, str | None]:
    """'Patient/1' -> ('Patient', '1', None); an external URL -> (None, None, url)."""
    m = _LOCAL.match(ref)
    if m and m.group("type") in resource_types() and (m.group("base") is None or m.group("base") == base):
        return m.group("type"), m.group("id"), None
    return None, None, ref


def rows(values, param, base: str = "") -> list[tuple]:
    out = []
    for value, _typ in values:
        ref = value.get("reference") if isinstance(value, dict) else value if isinstance(value, str) else None
        if isinstance(ref, str) and ref:
            out.append(split_reference(ref.split("|")[0] if not isinstance(value, dict) else ref, base))
    return list(dict.fromkeys(out))


def identifier_rows(values) -> list[tuple]:
    """Reference.identifier as token rows (system, code, text)."""
    out = []
    for value, _typ in values:
        ident = value.get("identifier") if isinstance(value, dict) else None
        if isinstance(ident, dict) and ident.get("value") is not None:
            out.append((ident.get("system") or "", str(ident["value"]), None))
    return list(dict.fromkeys(out))


def parse(param, modifier: str, raw: str, base: str = ""):
    value = unescape(raw)
    if not value:
        raise BadRequest(f"Empty reference value for '{param.code}'")
    if modifier and modifier not in resource_types():
        raise BadRequest(f"Unknown modifier :{modifier} for reference parameter '{param.code}'")
    rtype, rid, url = split_reference(value, base)
    if rtype is None and "/" not in value and ":" not in value:       # a bare id
        rid = value
        rtype = modifier or (param.targets[0] if len(param.targets) == 1 else None)
        return RefCond(rtype, rid)
    if modifier and rtype is not None and rtype != modifier:
        raise BadRequest(f"{param.code}:{modifier} cannot match a reference to {rtype}")
    if rtype is not None:
        return RefCond(rtype, rid)
    return RefCond(None, None, url)


def sql(cond, a: str):
    if isinstance(cond, RefIn):
        if cond.target_ids is None:
            return f"{a}.target_type = ?", [cond.target_type]
        return (f"({a}.target_type = ? AND {a}.target_id IN ({', '.join('?' * len(cond.target_ids))}))",
                [cond.target_type, *cond.target_ids])
    if cond.url is not None:
        return f"{a}.url = ?", [cond.url]
    if cond.target_type is None:
        return f"{a}.target_id = ?", [cond.target_id]
    return f"({a}.target_type = ? AND {a}.target_id = ?)", [cond.target_type, cond.target_id]


def match(cond, row) -> bool:
    target_type, target_id, url = row
    if isinstance(cond, RefIn):
        return target_type == cond.target_type and (cond.target_ids is None or target_id in cond.target_ids)
    if cond.url is not None:
        return url == cond.url
    return target_id == cond.target_id and (cond.target_type is None or target_type == cond.target_type)


def mongo(cond) -> dict:
    """match() as a MongoDB filter on one index element (fields target_type, target_id, url)."""
    if isinstance(cond, RefIn):
        if cond.target_ids is None:
            return {"target_type": {"$eq": cond.target_type}}
        return {"target_type": {"$eq": cond.target_type}, "target_id": {"$in": list(cond.target_ids)}}
    if cond.url is not None:
        return {"url": {"$eq": cond.url}}
    if cond.target_type is None:
        return {"target_id": {"$eq": cond.target_id}}
    return {"target_type": {"$eq": cond.target_type}, "target_id": {"$eq": cond.target_id}}
