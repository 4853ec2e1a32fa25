"""References as the message rules compare them: 'Type/id', whatever form the client wrote
(relative, absolute on this server, with a version; references.html#Reference)."""
from __future__ import annotations

import re

from ..errors import Unprocessable

_TAIL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def local(ref) -> str | None:
    """'Type/id' of a literal reference (a string), else None."""
    if not isinstance(ref, str):
        return None
    m = _TAIL.search(ref)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def of(value) -> list[str]:
    """'Type/id' of each Reference in value (one Reference or a list of them)."""
    items = value if isinstance(value, list) else [value] if value is not None else []
    found = (local(i.get("reference")) for i in items if isinstance(i, dict))
    return [r for r in found if r is not None]


def one(value) -> str | None:
    found = of(value)
    return found[0] if found else None


def patients(resource: dict, elements: tuple[str, ...]) -> set[str]:
    """The Patients these elements of resource name."""
    return {r for e in elements for r in of(resource.get(e)) if r.startswith("Patient/")}


def only_subject(resource: dict, elements: tuple[str, ...]) -> None:
    """The only Patient a message or request names is its subject (patients read their compartment)."""
    named = patients(resource, elements)
    subject = one(resource.get("subject"))
    strangers = sorted(named - {subject})
    if strangers:
        raise Unprocessable(f"This {resource['resourceType']} names {', '.join(strangers)} besides its subject "
                            f"({subject or 'none'}): a message is about one patient, its subject, who is "
                            "the only patient it may name")
