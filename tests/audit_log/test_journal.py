"""The audit journal (audit_log/journal.py): a durable append, drained into AuditEvent resources in
append order, exactly once even when a drain stops half way; readers of the trail drain it first."""
from __future__ import annotations

import json

from fhirserver.audit_log import balp, journal

BASE = "http://fhir.test/fhir"


def an_event(n: int) -> dict:
    return balp.event(BASE, balp.Actor(client_id="app"), balp.Interaction("read", 200, f"Patient/p{n}"), f"p{n}",
                      f"req-{n}")


def stored(store) -> list[dict]:
    return [json.loads(v.body) for v in reversed(store.history("AuditEvent", limit=1000).items)]


def test_append_then_drain_in_order(ctx):
    store = ctx.store
    before = len(stored(store))
    journal.append(store, [an_event(1), an_event(2)])
    journal.append(store, [an_event(3)])
    assert [id for _k, id, _b in store.journal_read(10)] and len(store.journal_read(10)) == 3
    assert journal.drain(store, BASE) == 3
    assert store.journal_read(10) == []
    assert [e["entity"][0]["what"]["reference"] for e in stored(store)[before:]] == \
        ["Patient/p1", "Patient/p2", "Patient/p3"]


def test_a_drain_that_stopped_before_deleting_stores_nothing_twice(ctx, monkeypatch):
    store = ctx.store
    before = len(stored(store))
    journal.append(store, [an_event(1), an_event(2)])
    monkeypatch.setattr(store, "journal_delete", lambda keys: (_ for _ in ()).throw(RuntimeError("crash")))
    try:
        journal.drain(store, BASE)
    except RuntimeError:
        pass
    monkeypatch.undo()
    assert len(store.journal_read(10)) == 2 and len(stored(store)) - before == 2
    assert journal.drain(store, BASE) == 2
    assert store.journal_read(10) == [] and len(stored(store)) - before == 2


def test_a_delete_never_removes_a_newer_entry(ctx):
    store = ctx.store
    journal.append(store, [an_event(1)])
    old = store.journal_read(10)
    store.journal_delete([(k, id) for k, id, _b in old])
    journal.append(store, [an_event(2)])
    store.journal_delete([(k, id) for k, id, _b in old])     # a second, late delete of the same entries
    assert [json.loads(b)["entity"][0]["what"]["reference"] for _k, _id, b in store.journal_read(10)] == \
        ["Patient/p2"]


def test_a_reader_of_the_trail_sees_every_earlier_request(client, ctx):
    client.get("/fhir/Patient/nobody")
    assert len(ctx.store.journal_read(10)) >= 1                # not yet a resource...
    r = client.get("/fhir/AuditEvent?entity=Patient/nobody")   # ...but a reader drains first
    assert r.json["total"] == 1
    left = ctx.store.journal_read(10)                           # what is left: the reader's own events
    assert left and all(json.loads(b)["subtype"][0]["code"] == "search-type" for _k, _id, b in left)


def test_an_entry_that_cannot_be_stored_is_set_aside_and_reported(ctx, monkeypatch):
    from fhirserver.audit_log import log as audit_log
    from fhirserver.audit_log.verify import verify
    store = ctx.store
    journal.append(store, [an_event(1), an_event(2), an_event(3)])
    poison = store.journal_read(10)[1][1]
    real = journal._store

    def refusing(store_, base, batch):
        if any(id == poison for _k, id, _b in batch):
            raise ValueError("too large for the store")
        return real(store_, base, batch)
    monkeypatch.setattr(journal, "_store", refusing)
    assert journal.drain(store, BASE) == 3                  # the others are not held up
    assert store.journal_read(10) == []
    assert [e["entity"][0]["what"]["reference"] for e in stored(store)[-2:]] == ["Patient/p1", "Patient/p3"]
    [(id, kept)] = store.list_records(journal.SET_ASIDE)
    assert id == poison and "too large" in kept["error"] and len(kept["sha256"]) == 64
    audit_log.integrate(store, ctx.settings)
    report = verify(store)
    assert not report.ok and report.first.kind == "set-aside entry" and poison in report.first.detail


def test_an_interrupted_group_commit_is_no_success(ctx, monkeypatch):
    from fhirserver.audit_log import group_commit
    committer = group_commit.GroupCommit(ctx.store, BASE)

    def interrupted(events):
        raise KeyboardInterrupt
    monkeypatch.setattr(committer, "_write", interrupted)
    ticket = group_commit._Ticket([an_event(1)])
    try:
        committer._commit([ticket])
    except KeyboardInterrupt:
        pass
    assert ticket.done and ticket.error is not None


def test_a_drain_hands_the_log_the_leaves_of_what_it_stored(ctx):
    from fhirserver.audit_log import log as audit_log
    store = ctx.store
    journal.append(store, [an_event(1), an_event(2)])
    leaves: dict = {}
    assert journal.drain(store, BASE, leaves=leaves) == 2
    for v in store.history("AuditEvent", limit=2).items:
        assert leaves[(v.id, v.version)] == merkle_leaf(audit_log, v.body)


def merkle_leaf(audit_log, body: bytes) -> str:
    from fhirserver.audit_log import merkle
    return merkle.leaf_hash(audit_log.canonical(body)).hex()


def test_a_body_parses_as_the_store_reads_it():
    from fhirserver import jsonio
    from fhirserver.audit_log import log as audit_log
    numbers = [b'{"a": [1.50, 2], "b": "x:1"}', b'{"a" : [ -1e-7 ]}', b'{"a":1}', b'{"a":\n\t-0.0}',
               b'{"b":{"c":[{"d":"x"},\r\n3]}}', b'[1.10]', b'{"a":[true, 1E400]}', b'{"a":["x", 18446744073709551616]}']
    for body in [json.dumps(an_event(1)).encode(), b'{"a": "\\u00e9\\ud83d\\ude00"}',
                 b'{"a":"\\":1,[2,3]"}'] + numbers:
        parsed, plain = journal.parse(body)
        assert parsed == jsonio.loads_stored(body) and json.dumps(parsed) == json.dumps(jsonio.loads_stored(body))
        assert plain == (body not in numbers) or body == b'{"a":"\\":1,[2,3]"}', body   # a false alarm is safe
        assert plain <= (not audit_log.holds_number(body))


def test_a_body_is_written_once_to_look_for_numbers(monkeypatch):
    """parse looks for numbers in one compact form of what it read, whichever searches that takes."""
    import orjson
    written = []
    real = orjson.dumps
    monkeypatch.setattr(journal.orjson, "dumps", lambda *a, **k: written.append(a) or real(*a, **k))
    for body in (json.dumps(an_event(1)).encode(), b'{"a": [1.5]}', b'{"a": "x"}'):
        written.clear()
        journal.parse(body)
        assert len(written) == 1, body
