"""Setting a response header without werkzeug's per-call scans (issue 16): Headers.set lowercases
every header name to find the old value, and setdefault and `in` raise and catch a KeyError when
there is none, which is the usual case for the headers the after-request hooks add."""
from __future__ import annotations

from werkzeug.datastructures import Headers


def present(headers: Headers, name: str) -> bool:
    """`name in headers`, without the exception of a miss."""
    wanted = name.lower()
    for key, _ in headers:
        if key.lower() == wanted:
            return True
    return False


def put(headers: Headers, name: str, value: str) -> None:
    """headers[name] = value: appended when absent (where Headers.set puts a new header too), else set."""
    if present(headers, name):
        headers.set(name, value)
    else:
        headers.add(name, value)


def add_absent(headers: Headers, names: set, name: str, value: str) -> None:
    """headers.setdefault(name, value) without its return value, knowing the response's lower-case header
    names (request_hooks.py reads them once for every step of a request); names learns the new one."""
    lower = name.lower()
    if lower not in names:
        headers.add(name, value)
        names.add(lower)
