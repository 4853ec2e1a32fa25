"""Splitting and unescaping search values (search.html#escaping: \\, \\| \\$ \\\\)."""
from __future__ import annotations


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped with a backslash; escapes stay for unescape()."""
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


def escape(value: str) -> str:
    """The inverse of unescape: a literal value inside a search parameter (search.html#escaping)."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")
