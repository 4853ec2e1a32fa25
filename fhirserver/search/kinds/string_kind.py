"""string (search.html#string): case- and accent-insensitive prefix match by default,
:exact for exact case-sensitive equality, :contains for a folded substring.
HumanName and Address index each of their parts and their combined text.
Rows are (folded, exact).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import BadRequest
from ..normalize import fold, prefix_upper_bound
from ..parse_util import unescape

COLUMNS = ("folded", "exact")
LOOKUP = [("folded", "rid"), ("exact",)]   # store indexes: (param, *cols)
SORT_COLUMNS = {"asc": "folded", "desc": "folded"}

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


@dataclass(frozen=True)
class StringCond:
    mode: str       # prefix | exact | contains
    value: str      # folded, except for exact


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        out = []
        for part in _NAME_PARTS + _ADDRESS_PARTS:
            v = value.get(part)
            out += [x for x in v if isinstance(x, str)] if isinstance(v, list) else [v] if isinstance(v, str) else []
        return out
    return []


def rows(values, param) -> list[tuple]:
    out = []
    for value, _typ in values:
        for s in _strings(value):
            out.append((fold(s), s))
    return list(dict.fromkeys(out))


def parse(param, modifier: str, raw: str):
    value = unescape(raw)
    if modifier == "exact":
        return StringCond("exact", value)
    if modifier == "contains":
        return StringCond("contains", fold(value))
    if modifier:
        raise BadRequest(f"Unknown modifier :{modifier} for string parameter '{param.code}'")
    return StringCond("prefix", fold(value))


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sql(cond, a: str):
    if cond.mode == "exact":
        return f"{a}.exact = ?", [cond.value]
    if cond.mode == "contains":
        return f"{a}.folded LIKE ? ESCAPE '\\'", ["%" + _like_escape(cond.value) + "%"]
    return f"({a}.folded >= ? AND {a}.folded < ?)", [cond.value, prefix_upper_bound(cond.value)]


def match(cond, row) -> bool:
    folded, exact = row
    if cond.mode == "exact":
        return exact == cond.value
    if cond.mode == "contains":
        return cond.value in folded
    return folded.startswith(cond.value)


# ---- MongoDB ----------------------------------------------------------------------

def _successor(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code point order
    (MongoDB's simple collation and Python's str order alike): 'ab' -> 'ac'. None when
    there is none ('' or only U+10FFFF). Unlike prefix_upper_bound (prefix + U+10FFFF),
    it also keeps strings whose next character is U+10FFFF inside the range. Surrogates
    are skipped: BSON strings are valid UTF-8, so no stored string holds one."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            nxt = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
            return prefix[:-1] + chr(nxt)
        prefix = prefix[:-1]
    return None


def mongo_prefix(prefix: str) -> dict:
    """Exactly the strings starting with `prefix`, as a range (no regular expression);
    never null, a missing field or a non-string (MongoDB compares within a type)."""
    upper = _successor(prefix)
    return {"$gte": prefix} if upper is None else {"$gte": prefix, "$lt": upper}


def mongo_literal_regex(text: str) -> str:
    """A $regex pattern matching `text` literally anywhere: re.escape() escapes every
    metacharacter with a backslash, which PCRE (MongoDB) reads as a literal too; NUL,
    which a BSON regex cannot hold, becomes \\x00."""
    return re.escape(text).replace("\x00", "\\x00")


def mongo(cond) -> dict:
    """match() as a MongoDB filter on one index element (fields folded, exact)."""
    if cond.mode == "exact":
        return {"exact": {"$eq": cond.value}}
    if cond.mode == "contains":
        return {"folded": {"$regex": mongo_literal_regex(cond.value)}}
    return {"folded": mongo_prefix(cond.value)}
