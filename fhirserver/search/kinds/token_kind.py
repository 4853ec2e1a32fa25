"""token (search.html#token): codes, Codings, CodeableConcepts, Identifiers,
ContactPoints, booleans. Rows are (system, code, text): `code`, `system|code`,
`|code` and `system|` are exact lookups; :text searches display/text, folded.
Identifier.type is indexed separately for :of-type (rows under '<param>:of-type').
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from ...errors import BadRequest
from .. import identifier_forms
from ..normalize import fold, prefix_upper_bound
from ..parse_util import split_unescaped, unescape
from .string_kind import mongo_prefix

COLUMNS = ("system", "code", "text")
LOOKUP = [("code", "system", "rid"), ("system",), ("text",)]   # store indexes: (param, *cols)
SORT_COLUMNS = {"asc": "code", "desc": "code"}
OF_TYPE = ":of-type"


@dataclass(frozen=True)
class Code:
    system: str | None      # None: any system; "": no system
    code: str | None        # None: any code (system|)


@dataclass(frozen=True)
class Text:
    prefix: str             # folded


@dataclass(frozen=True)
class CodeIn:
    """:in, :not-in, :below, :above (search/token_sets.py): a row's (system, code) is one of `pairs`;
    a row without a system (an element of type code, whose system is its binding's) by its code alone."""
    pairs: frozenset[tuple[str, str]]

    @functools.cached_property
    def by_system(self) -> list[tuple[str, list[str]]]:
        groups: dict[str, list[str]] = {}
        for system, code in sorted(self.pairs):
            groups.setdefault(system, []).append(code)
        return sorted(groups.items())

    @functools.cached_property
    def codes(self) -> list[str]:
        return sorted({code for _s, code in self.pairs})

    @functools.cached_property
    def code_set(self) -> frozenset[str]:
        return frozenset(self.codes)


@dataclass(frozen=True)
class OfType:
    system: str
    code: str
    value: str
    suffix: str = OF_TYPE


CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}


def rows(values, param) -> list[tuple]:
    """A missing system is stored as "" so that |code is an exact lookup."""
    out = []
    for value, typ in values:
        if isinstance(value, bool):
            out.append(("", "true" if value else "false", None))
        elif isinstance(value, (str, int, float)):
            out.append(("", str(value), None))
        elif not isinstance(value, dict):
            continue
        elif "coding" in value or ("text" in value and "value" not in value and "code" not in value):
            out += [_coding(c) for c in value.get("coding") or () if isinstance(c, dict)]
            if isinstance(value.get("text"), str):
                out.append(("", None, fold(value["text"])))
        elif "value" in value:
            if typ == "ContactPoint" or value.get("system") in CONTACT_SYSTEMS:
                out.append(("", str(value["value"]), None))
            else:   # Identifier
                out.append((value.get("system") or "", str(value["value"]), _type_text(value)))
        elif "code" in value or "system" in value:
            out.append(_coding(value))
    return list(dict.fromkeys(out))


def of_type_rows(values) -> list[tuple]:
    """Identifier.type codings with the identifier value: (type system, type code, value)."""
    out = []
    for value, _typ in values:
        if isinstance(value, dict) and isinstance(value.get("type"), dict) and "value" in value:
            for coding in value["type"].get("coding") or ():
                out.append((coding.get("system") or "", coding.get("code") or "", str(value["value"])))
    return list(dict.fromkeys(out))


def _coding(c: dict) -> tuple:
    display = c.get("display")
    return (c.get("system") or "", c.get("code"), fold(display) if isinstance(display, str) else None)



def _type_text(value: dict):
    t = value.get("type")
    return fold(t["text"]) if isinstance(t, dict) and isinstance(t.get("text"), str) else None


def parse(param, modifier: str, raw: str):
    if modifier == "text":
        return Text(fold(unescape(raw)))
    if modifier == "of-type":
        parts = [unescape(p) for p in split_unescaped(raw, "|")]
        if len(parts) != 3 or not all(parts):
            raise BadRequest(f"{param.code}:of-type needs system|code|value, got {raw!r}")
        return OfType(*parts)
    if modifier in ("in", "not-in", "above", "below"):      # search/token_sets.py, with the server's terminology
        raise BadRequest(f"The :{modifier} modifier is not available here: it needs the server's terminology")
    if modifier:
        raise BadRequest(f"Unknown modifier :{modifier} for token parameter '{param.code}'")
    parts = split_unescaped(raw, "|")
    if len(parts) == 1:
        return Code(None, unescape(parts[0]))
    if len(parts) == 2:
        system, code = unescape(parts[0]), unescape(parts[1])
        if system == "" and code == "":
            raise BadRequest(f"Empty token value for '{param.code}'")
        return Code(system, identifier_forms.canonical(system, code or None, param.code))
    raise BadRequest(f"Invalid token {raw!r} for '{param.code}': use [system]|[code]")


def sql(cond, a: str):
    if isinstance(cond, Text):
        return f"({a}.text >= ? AND {a}.text < ?)", [cond.prefix, prefix_upper_bound(cond.prefix)]
    if isinstance(cond, OfType):
        return f"({a}.system = ? AND {a}.code = ? AND {a}.text = ?)", [cond.system, cond.code, cond.value]
    if isinstance(cond, CodeIn):
        return _code_in_sql(cond, a)
    parts, args = [], []
    if cond.code is not None:
        parts.append(f"{a}.code = ?")
        args.append(cond.code)
    if cond.system is not None:
        parts.append(f"{a}.system = ?")
        args.append(cond.system)
    return "(" + " AND ".join(parts) + ")", args


def _code_in_sql(cond: CodeIn, a: str):
    """`code IN (every code)`, which the (param, code, system) index serves, then per system its own
    codes (a row without a system by its code alone); an empty set matches nothing."""
    if not cond.pairs:
        return "(0)", []
    parts, args = [f"{a}.system = ?"], [""]
    if len(cond.by_system) == 1:
        parts.append(f"{a}.system = ?")
        args.append(cond.by_system[0][0])
    else:
        for system, codes in cond.by_system:
            parts.append(f"({a}.system = ? AND {a}.code IN ({', '.join('?' * len(codes))}))")
            args += [system, *codes]
    every = ", ".join("?" * len(cond.codes))
    return f"({a}.code IN ({every}) AND ({' OR '.join(parts)}))", list(cond.codes) + args


def match(cond, row) -> bool:
    system, code, text = row
    if isinstance(cond, Text):
        return text is not None and text.startswith(cond.prefix)
    if isinstance(cond, CodeIn):
        return code is not None and ((system, code) in cond.pairs
                                     or (system == "" and code in cond.code_set))
    if isinstance(cond, OfType):
        return (system, code, text) == (cond.system, cond.code, cond.value)
    if cond.code is not None and code != cond.code:
        return False
    if cond.system is not None and system != cond.system:
        return False
    return True


def mongo(cond) -> dict:
    """match() as a MongoDB filter on one index element (fields system, code, text).
    $eq keeps every value a value; a text of None (null) never starts with a prefix,
    and a code of None never equals a code."""
    if isinstance(cond, Text):
        return {"text": mongo_prefix(cond.prefix)}
    if isinstance(cond, OfType):
        return {"system": {"$eq": cond.system}, "code": {"$eq": cond.code}, "text": {"$eq": cond.value}}
    if isinstance(cond, CodeIn):       # as its SQL: every code first (ix_token_code_system), then per system
        if len(cond.by_system) <= 1:
            return {"code": {"$in": cond.codes}, "system": {"$in": [""] + [s for s, _c in cond.by_system]}}
        return {"code": {"$in": cond.codes}, "$or": [{"system": {"$eq": ""}}] + [
            {"system": {"$eq": system}, "code": {"$in": codes}} for system, codes in cond.by_system]}
    out = {}
    if cond.code is not None:
        out["code"] = {"$eq": cond.code}
    if cond.system is not None:
        out["system"] = {"$eq": cond.system}
    return out
