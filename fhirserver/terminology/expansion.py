"""A ValueSet's expansion, filtered and paged (http://hl7.org/fhir/R4/valueset-operation-expand.html,
valueset.html#expansion): expansion.total counts the filtered members, expansion.offset says where
the page starts, expansion.parameter echoes filter/offset/count."""
from __future__ import annotations

import uuid

from ..errors import BadRequest
from ..interactions.instants import now_instant

MAX_PAGE = 1000              # members one page may hold (count above it: 400)
MAX_FILTER = 200             # characters of the text filter
MAX_INTEGER = 2**31 - 1      # offset and count are FHIR integers (datatypes.html#integer: 32-bit)
_COPIED = ("id", "url", "identifier", "version", "name", "title", "status", "experimental", "date", "publisher",
           "description", "copyright")


def _integer(name: str, value, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"$expand {name} must be an integer") from None
    if n < 0 or n > MAX_INTEGER:
        raise BadRequest(f"$expand {name} must be an integer from 0 to {MAX_INTEGER}")
    return n


def expansion(tx, valueset, *, filter=None, offset=0, count=None, active_only: bool = False) -> dict:
    offset = _integer("offset", offset, 0)
    count = _integer("count", count, None)
    if count is not None and count > MAX_PAGE:
        raise BadRequest(f"$expand count may be at most {MAX_PAGE} (page with offset)")
    if filter is not None and (not isinstance(filter, str) or len(filter) > MAX_FILTER):
        raise BadRequest(f"$expand filter must be text of at most {MAX_FILTER} characters")
    vs = tx.value_set(valueset)
    members = tx.entries(valueset)
    if active_only:
        members = [e for e in members if not e.inactive]
    if filter:
        words = filter.lower().split()
        members = [e for e in members if all(w in (e.display or "").lower() or w in e.code.lower() for w in words)]
    page = members[offset:offset + (MAX_PAGE if count is None else count)]
    params = [{"name": "offset", "valueInteger": offset}]
    if filter:
        params.insert(0, {"name": "filter", "valueString": filter})
    if count is not None:
        params.append({"name": "count", "valueInteger": count})
    if active_only:
        params.append({"name": "activeOnly", "valueBoolean": True})
    out = {"resourceType": "ValueSet", **{k: vs[k] for k in _COPIED if k in vs}}
    out.setdefault("status", "active")
    out["expansion"] = {"identifier": f"urn:uuid:{uuid.uuid4()}", "timestamp": now_instant(),
                        "total": len(members), "offset": offset, "parameter": params,
                        "contains": [_contains(e) for e in page]}
    if not out["expansion"]["contains"]:
        del out["expansion"]["contains"]
    return out


def _contains(e) -> dict:
    c = {"system": e.system}
    if e.version:
        c["version"] = e.version
    if e.abstract:
        c["abstract"] = True
    if e.inactive:
        c["inactive"] = True
    c["code"] = e.code
    if e.display:
        c["display"] = e.display
    return c
