"""Which FHIR RESTful interaction (http.html, restful-interaction codes) a method and path name.

    classify("GET", "Patient/1/_history/2") -> Call("vread", "Patient", "1", "2")

Paths are relative to the FHIR base ("/fhir" stripped); the query string is not part of them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    code: str                      # restful-interaction code
    type: str | None = None
    id: str | None = None
    vid: str | None = None
    operation: str | None = None   # $name

    @property
    def target(self) -> str | None:
        """Type/id[/_history/vid] when the call names one resource."""
        if not (self.type and self.id):
            return None
        return f"{self.type}/{self.id}" + (f"/_history/{self.vid}" if self.vid else "")


_WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def classify(method: str, path: str) -> Call:
    method = "GET" if method == "HEAD" else method
    parts = [p for p in path.split("?", 1)[0].strip("/").split("/") if p]
    op = next((p for p in parts if p.startswith("$")), None)
    if op is not None:
        before = parts[:parts.index(op)]
        return Call("operation", _type(before[0]) if before else None, before[1] if len(before) > 1 else None,
                    operation=op)
    if not parts:
        return Call("search-system" if method == "GET" else "batch")
    head = parts[0]
    if head == "metadata":
        return Call("capabilities")
    if head == "_history":
        return Call("history-system")
    if head == "_search":
        return Call("search-system")
    rtype = _type(head)
    if len(parts) == 1:
        return Call("search-type" if method == "GET" else _WRITES.get(method, "search-type"), rtype)
    second = parts[1]
    if second == "_search":
        return Call("search-type", rtype)
    if second == "_history":
        return Call("history-type", rtype)
    if len(parts) == 2:
        return Call("read" if method == "GET" else _WRITES.get(method, "read"), rtype, second)
    if parts[2] == "_history":
        return Call("vread", rtype, second, parts[3]) if len(parts) > 3 else Call("history-instance", rtype, second)
    return Call("search-type", _type(parts[2]), None)       # a compartment search: Patient/1/Observation


def _type(name: str) -> str | None:
    return name if name[:1].isupper() else None
