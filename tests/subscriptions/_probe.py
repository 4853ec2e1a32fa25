"""The leak tables' probe of another's Subscription (tests/smart_auth/test_leaks.py, the patients';
tests/governance/test_org_leaks.py, the hospitals'): every route answers like an absent one."""
from __future__ import annotations

SUFFIXES = ("", "/_history", "/_history/1", "/$status", "/$events", "/$events?content=full-resource")


def probe_others_subscription(h, theirs: dict) -> None:
    """h: a leak table's harness (same_as_absent, get, call); theirs: the Subscription as stored."""
    for suffix in SUFFIXES:
        h.same_as_absent(lambda x, sfx=suffix: h.get(f"/fhir/Subscription/{x}{sfx}"), theirs["id"])
    for op in ("$status", "$events"):
        h.same_as_absent(lambda x, o=op: h.call("POST", f"/fhir/Subscription/{x}/{o}", body={"resourceType": "Parameters"}),
                         theirs["id"])
    h.same_as_absent(lambda x: h.call("PUT", f"/fhir/Subscription/{x}", body={**theirs, "id": x}), theirs["id"])
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/Subscription/{x}"), theirs["id"])
