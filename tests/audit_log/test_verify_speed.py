"""verify's fast paths (docs/audit.md, Verify speed) decide exactly as before: large history pages,
and the orjson leaf with log.leaf_of deciding every mismatch."""
from __future__ import annotations

import json

from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log import verify as verify_mod
from fhirserver.audit_log.verify import verify
from fhirserver.storage.base import Write
from tests.audit_log.test_log import _tamper, stored_events, write_events


def test_small_history_pages_give_the_same_answers(ctx, backend, monkeypatch):
    monkeypatch.setattr(verify_mod, "HISTORY_PAGE", 3)
    write_events(ctx, 10)
    audit_log.integrate(ctx.store, ctx.settings)
    assert verify(ctx.store).ok and verify(ctx.store).size == 10
    _tamper(ctx.store, backend, "swapped", stored_events(ctx.store))
    assert (verify(ctx.store).first.index, verify(ctx.store).first.kind) == (3, "swapped entries")


def test_bodies_orjson_reads_or_writes_otherwise_are_decided_by_the_canonical_form(ctx):
    small = json.dumps({"resourceType": "AuditEvent", "id": "f", "extension": [{"valueDecimal": 1e-7}]}).encode()
    assert verify_mod._quick_leaf(small) != audit_log.leaf_of(small)        # "1e-7" against "1e-07"
    big = b'{"resourceType":"AuditEvent","id":"g","extension":[{"valueInteger":123456789012345678901234}]}'
    assert verify_mod._quick_leaf(big) is None                               # orjson would read a float
    for id_, body in (("f", small), ("g", big)):
        with ctx.store.transaction() as tx:
            tx.write(Write("AuditEvent", id_, 1, "2026-01-01T00:00:00.000000Z", "POST", body, {}))
    write_events(ctx, 2)
    audit_log.integrate(ctx.store, ctx.settings)
    assert verify(ctx.store).ok
