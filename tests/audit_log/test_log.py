"""The append-only audit log (issue 15): integration, checkpoints, tamper detection, endpoints."""
from __future__ import annotations

import base64
import json
import threading

import pytest

from fhirserver import audit, jsonio
from fhirserver.audit_log import checkpoint as cp
from fhirserver.audit_log import journal, merkle
from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log.keys import AuditKeys
from fhirserver.audit_log.verify import verify
from fhirserver.storage.base import Write


def write_events(ctx, n, start=0):
    for i in range(start, start + n):
        audit.record(ctx, type_code=("110100", "Application Activity"), subtype=("test", "Test"), action="E",
                     what=f"Patient/p{i}", description=f"event {i}")


def stored_events(store):
    out, cursor = [], None
    while True:
        page = store.history("AuditEvent", limit=1000, cursor=cursor)
        out += page.items
        if page.next_cursor is None:
            return list(reversed(out))
        cursor = page.next_cursor


def test_integration_appends_every_event_once_in_write_order(ctx):
    store, settings = ctx.store, ctx.settings
    write_events(ctx, 7)
    assert audit_log.integrate(store, settings) == 7
    assert audit_log.integrate(store, settings) == 0
    write_events(ctx, 5, 7)
    assert audit_log.integrate(store, settings) == 5
    entries = audit_log.all_entries(store)
    events = stored_events(store)
    assert [(e.id, e.version) for e in entries] == [(v.id, v.version) for v in events]
    assert [e.leaf for e in entries] == [audit_log.leaf_of(v.body) for v in events]
    assert [e.index for e in entries] == list(range(12))
    # the leaf is the hash of the canonical JSON of the body
    body = json.loads(events[0].body)
    assert entries[0].leaf == merkle.leaf_hash(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    report = verify(store)
    assert report.ok, report.problems
    assert report.size == 12


def test_a_store_with_no_late_commits_is_integrated_with_a_short_look_back(ctx, monkeypatch):
    store, settings = ctx.store, ctx.settings
    monkeypatch.setattr(store, "late_commit_s", 0.0, raising=False)
    assert audit_log.look_back_s(store) == 0.0
    before = audit_log.size(store) + audit_log.integrate(store, settings)
    write_events(ctx, 3)
    assert audit_log.integrate(store, settings) == 3
    write_events(ctx, 2, 3)
    assert audit_log.integrate(store, settings) == 2 and audit_log.integrate(store, settings) == 0
    assert audit_log.size(store) == before + 5 and verify(store).ok


def test_events_the_integrator_has_no_leaf_for_are_read_and_hashed(ctx):
    """Written directly (audit.record), or drained by a reader (no leaves handed over): the integrator
    lists its window without bodies (Store.type_history), then with bodies to hash these; the
    leaves its own drain hands over are the same hashes."""
    store, settings = ctx.store, ctx.settings

    def journalled(n):
        journal.append(store, [{"resourceType": "AuditEvent", "action": "R", "outcome": "0",
                                "recorded": f"2026-01-01T00:00:0{i}Z", "entity": [{"what": {"reference": f"Patient/p{i}"}}]}
                               for i in range(n)])

    write_events(ctx, 3)
    assert audit_log.integrate(store, settings) == 3
    journalled(4)
    assert journal.drain(store, settings.base_url) == 4            # a reader's drain: no leaves
    write_events(ctx, 1, 3)
    journalled(2)                                                   # drained by the integrator itself
    assert audit_log.integrate(store, settings) == 7
    entries, events = audit_log.all_entries(store), stored_events(store)
    assert [(e.id, e.version, e.leaf) for e in entries] == [(v.id, v.version, audit_log.leaf_of(v.body))
                                                           for v in events]
    assert len(entries) == 10 and verify(store).ok


def test_an_integrator_keeps_what_it_read_of_the_batches_in_its_window(ctx, monkeypatch):
    """Round after round, the logged entries of the look-back window are those a fresh integrator reads
    from the batch records; a batch another integrator added is read from the store."""
    store, settings = ctx.store, ctx.settings
    monkeypatch.setattr(audit_log, "BATCH", 3)
    kept, other = audit_log.Integrator(store, settings), audit_log.Integrator(store, settings)
    for n in range(5):
        write_events(ctx, 4, 10 * n)
        assert (kept if n != 2 else other).run_once() == 4
        kept.release(), other.release()
        size, last = audit_log.tail(store)
        horizon = audit_log._minus(max(e[3] for e in last["entries"]), audit_log.look_back_s(store))
        fresh = audit_log.Integrator(store, settings)._logged_since(last, horizon)
        assert kept._logged_since(last, horizon) == fresh == {(e.id, e.version) for e in audit_log.all_entries(store)}
    reads = []
    monkeypatch.setattr(store, "get_record", lambda *a: reads.append(a) or type(store).get_record(store, *a))
    kept._logged_since(last, horizon)
    assert not [a for a in reads if a[0] == audit_log.BATCH_KIND]      # nothing read again
    assert verify(store).ok


def _stamped(store, id: str, when: str) -> None:
    """An AuditEvent version stamped `when` (committed now: a late commit when `when` is behind)."""
    body = jsonio.dumps({"resourceType": "AuditEvent", "id": id, "recorded": when,
                         "meta": {"versionId": "1", "lastUpdated": when}})
    with store.transaction() as tx:
        tx.write(Write("AuditEvent", id, 1, when, "POST", body, {}))


def test_an_event_logged_before_a_late_commit_is_not_logged_again(ctx):
    """A late commit (stamped before an event already logged) makes a batch whose earliest entry is
    behind the look-back window while an older batch still holds entries inside it: those are known,
    not logged a second time."""
    store, settings = ctx.store, ctx.settings
    minute = "2026-01-01T00:01:"
    _stamped(store, "e0", minute + "30.000000Z")
    _stamped(store, "e", minute + "40.000000Z")
    assert audit_log.integrate(store, settings) == 2
    _stamped(store, "f", minute + "36.000000Z")        # 4 s behind e, committed after it was logged
    assert audit_log.integrate(store, settings) == 1
    _stamped(store, "g", minute + "41.500000Z")
    assert audit_log.integrate(store, settings) == 1   # the window from 36.5 s: e is in it, and logged
    _stamped(store, "h", minute + "43.000000Z")
    assert audit_log.integrate(store, settings) == 1
    assert [e.id for e in audit_log.all_entries(store)] == ["e0", "e", "f", "g", "h"] and verify(store).ok


def test_a_log_written_before_batches_kept_their_newest_time_still_integrates(ctx, monkeypatch):
    store, settings = ctx.store, ctx.settings
    monkeypatch.setattr(audit_log, "BATCH", 2)
    write_events(ctx, 5)
    assert audit_log.integrate(store, settings) == 5
    for key, record in store.list_records(audit_log.BATCH_KIND):     # as a log written before
        store.put_record(audit_log.BATCH_KIND, key, {k: v for k, v in record.items() if k != "newest"})
    write_events(ctx, 3, 5)
    assert audit_log.integrate(store, settings) == 3 and audit_log.integrate(store, settings) == 0
    assert len(audit_log.all_entries(store)) == 8 and verify(store).ok


def test_batches_are_bounded(ctx, monkeypatch):
    monkeypatch.setattr(audit_log, "BATCH", 4)
    write_events(ctx, 10)
    assert audit_log.integrate(ctx.store, ctx.settings) == 10
    assert [v["start"] for _k, v in ctx.store.list_records(audit_log.BATCH_KIND)] == [0, 4, 8]
    assert verify(ctx.store).ok


def test_concurrent_integrators_give_one_log(ctx):
    store, settings = ctx.store, ctx.settings
    stop = threading.Event()
    errors = []

    def integrator(k):
        it = audit_log.Integrator(store, settings, owner=f"worker-{k}")
        try:
            while not stop.is_set():
                it.run_once()
                if k % 2:                   # half of them give the lease up at once: it changes hands
                    it.release()
        except Exception as e:              # noqa: BLE001
            errors.append(e)
        finally:
            it.release()
            store.close()
    threads = [threading.Thread(target=integrator, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    write_events(ctx, 60)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    audit_log.integrate(store, settings)
    entries = audit_log.all_entries(store)
    keys = [(e.id, e.version) for e in entries]
    assert len(keys) == len(set(keys)) == 60
    assert [e.index for e in entries] == list(range(60))
    assert verify(store).ok


def test_checkpoints_are_signed_consistent_and_survive_key_rotation(ctx):
    store, settings = ctx.store, ctx.settings
    settings.audit_checkpoint_entries = 5
    write_events(ctx, 5)
    audit_log.integrate(store, settings)
    first = audit_log.latest_checkpoint(store)
    c1 = AuditKeys(store).verify(first)
    assert c1.size == 5 and c1.origin == "fhir.test/audit"
    AuditKeys(store).rotate()
    write_events(ctx, 6, 5)
    audit_log.integrate(store, settings)
    second = audit_log.latest_checkpoint(store)
    c2 = AuditKeys(store).verify(second)
    assert c2.size == 11 and second != first
    leaves = [e.leaf for e in audit_log.all_entries(store)]
    assert merkle.verify_consistency(5, 11, c1.root, c2.root, merkle.consistency_proof(leaves, 5))
    assert len(audit_log.checkpoints(store)) == 2
    assert verify(store, external=first).ok


def test_the_log_refuses_to_sign_an_inconsistent_checkpoint(ctx):
    store, settings = ctx.store, ctx.settings
    settings.audit_checkpoint_entries = 1
    write_events(ctx, 3)
    audit_log.integrate(store, settings)
    key = store.get_record(audit_log.BATCH_KIND, audit_log.key_of(0))
    key["entries"][1][2] = "00" * 32               # someone rewrote an entry of the signed tree
    store.put_record(audit_log.BATCH_KIND, audit_log.key_of(0), key)
    write_events(ctx, 1, 3)
    with pytest.raises(audit_log.LogInconsistent):
        audit_log.integrate(store, settings)
    assert AuditKeys(store).verify(audit_log.latest_checkpoint(store)).size == 3


# ---- tampering, directly in the store --------------------------------------------------------------
def _tamper(store, backend, kind, events):
    """Change the stored AuditEvents behind the server's back."""
    a, b = events[3], events[6]
    if backend == "sqlite":
        conn = store._conn()
        rid = lambda v: conn.execute("SELECT rid FROM resource WHERE type='AuditEvent' AND id=?",  # noqa: E731
                                     (v.id,)).fetchone()[0]
        if kind == "changed":
            body = json.loads(a.body)
            body["outcome"] = "8"
            conn.execute("UPDATE version SET body=? WHERE rid=? AND version=?", (json.dumps(body).encode(), rid(a), 1))
        elif kind == "deleted":
            conn.execute("DELETE FROM version WHERE rid=?", (rid(a),))
        elif kind == "swapped":
            conn.execute("UPDATE version SET body=? WHERE rid=?", (b.body, rid(a)))
            conn.execute("UPDATE version SET body=? WHERE rid=?", (a.body, rid(b)))
        elif kind == "inserted":
            body = json.loads(a.body)
            body["id"] = "forged"
            conn.execute("INSERT INTO resource (type, id, version, deleted, last_updated) "
                         "VALUES ('AuditEvent', 'forged', 1, 0, ?)", (a.last_updated,))
            conn.execute("INSERT INTO version (rid, version, type, last_updated, method, body) "
                         "VALUES (?, 1, 'AuditEvent', ?, 'POST', ?)",
                         (rid(type("V", (), {"id": "forged"})), "2000-01-01T00:00:00.000000Z",
                          json.dumps(body).encode()))
        conn.commit()
        return
    versions = store.versions
    key = lambda v: {"r": f"AuditEvent/{v.id}", "version": v.version}  # noqa: E731
    if kind == "changed":
        body = json.loads(a.body)
        body["outcome"] = "8"
        versions.update_one(key(a), {"$set": {"body": json.dumps(body).encode()}})
    elif kind == "deleted":
        versions.delete_one(key(a))
    elif kind == "swapped":
        versions.update_one(key(a), {"$set": {"body": b.body}})
        versions.update_one(key(b), {"$set": {"body": a.body}})
    elif kind == "inserted":
        doc = dict(versions.find_one(key(a)))
        body = json.loads(a.body)
        body["id"] = "forged"
        from bson import ObjectId
        doc.update(_id=ObjectId(), r="AuditEvent/forged", id="forged", body=json.dumps(body).encode(),
                   last_updated="2000-01-01T00:00:00.000000Z", seq=ObjectId())
        versions.insert_one(doc)


@pytest.mark.parametrize("kind,index,what", [("changed", 3, "changed entry"), ("deleted", 3, "deleted entry"),
                                             ("swapped", 3, "swapped entries"),
                                             ("inserted", 0, "entry inserted in the middle")])
def test_each_tamper_is_found_at_its_index(ctx, backend, kind, index, what):
    store, settings = ctx.store, ctx.settings
    write_events(ctx, 10)
    audit_log.integrate(store, settings)
    assert verify(store).ok
    _tamper(store, backend, kind, stored_events(store))
    report = verify(store)
    assert not report.ok
    assert (report.first.index, report.first.kind) == (index, what), report.problems


def test_a_truncated_tail_is_found_against_a_checkpoint_held_outside(ctx, backend):
    store, settings = ctx.store, ctx.settings
    write_events(ctx, 10)
    audit_log.integrate(store, settings)
    held = audit_log.latest_checkpoint(store)
    # the last batch, its events and the checkpoints are removed: the store alone looks whole
    for k, _v in store.list_records(audit_log.CHECKPOINT_KIND):
        store.delete_record(audit_log.CHECKPOINT_KIND, k)
    store.delete_record(audit_log.STATE_KIND, "checkpoint")
    store.delete_record(audit_log.STATE_KIND, "head")
    last = store.get_record(audit_log.BATCH_KIND, audit_log.key_of(0))
    last["entries"] = last["entries"][:7]
    rng = audit_log.extend([], (bytes.fromhex(e[2]) for e in last["entries"]))
    last["range"] = audit_log._range_json(rng)
    store.put_record(audit_log.BATCH_KIND, audit_log.key_of(0), last)
    events = stored_events(store)
    if backend == "sqlite":
        conn = store._conn()
        for v in events[7:]:
            conn.execute("DELETE FROM version WHERE seq IN (SELECT v.seq FROM version v JOIN resource r "
                         "ON r.rid = v.rid WHERE r.id = ?)", (v.id,))
        conn.commit()
    else:
        for v in events[7:]:
            store.versions.delete_one({"r": f"AuditEvent/{v.id}"})
    assert verify(store).ok                      # nothing inside the store shows it
    report = verify(store, external=held)
    assert (report.first.index, report.first.kind) == (7, "truncated tail"), report.problems


def test_a_forged_checkpoint_is_refused(ctx):
    write_events(ctx, 3)
    audit_log.integrate(ctx.store, ctx.settings)
    text = audit_log.latest_checkpoint(ctx.store)
    body, _, sig = text.partition("\n\n")
    forged = body.replace("\n3\n", "\n4\n") + "\n\n" + sig
    report = verify(ctx.store, external=forged)
    assert report.first.kind == "bad checkpoint"


# ---- the CLI ----------------------------------------------------------------------------------------
def test_cli_checkpoint_and_verify(tmp_path, capsys):
    from fhirserver import create_app
    from fhirserver.cli import main
    from tests.conftest import make_settings
    settings = make_settings(tmp_path)
    app = create_app(settings)
    write_events(app.config["MEDPORT"], 4)
    url = settings.store
    assert main(["audit", "checkpoint", "--store", url]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[1] == "4"
    held = tmp_path / "held.txt"
    held.write_text(text)
    assert main(["audit", "verify", "--store", url, "--checkpoint", str(held)]) == 0
    assert capsys.readouterr().out.startswith("OK: 4 entries")
    assert main(["audit", "rotate-key", "--store", url]) == 0
    conn = app.config["MEDPORT"].store._conn()
    conn.execute("UPDATE version SET body = replace(body, 'event 2', 'event X') WHERE type = 'AuditEvent'")
    conn.commit()
    assert main(["audit", "verify", "--store", url]) == 1
    assert "FAILED at index 2: changed entry" in capsys.readouterr().out


# ---- the endpoints ----------------------------------------------------------------------------------
def test_endpoints_serve_checkpoint_proofs_and_entries(app, client, ctx):
    write_events(ctx, 9)
    audit_log.integrate(ctx.store, ctx.settings)
    r = client.get("/fhir/$audit-checkpoint")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    c = AuditKeys(ctx.store).verify(r.get_data(as_text=True))
    assert c.size == 9
    p = _params(client.get("/fhir/$audit-proof?index=4&size=9").get_json())
    assert merkle.verify_inclusion(4, 9, p["leafHash"][0], p["hash"], c.root)
    p = _params(client.get("/fhir/$audit-consistency?from=3&to=9").get_json())
    assert merkle.verify_consistency(3, 9, p["fromRoot"][0], c.root, p["hash"])
    r = client.get("/fhir/$audit-entries?start=2&end=5").get_json()
    entries = [e for e in r["parameter"] if e["name"] == "entry"]
    assert [e["part"][0]["valueInteger"] for e in entries] == [2, 3, 4]
    assert client.get("/fhir/$audit-proof?index=9&size=9").status_code == 400


def _params(parameters):
    out = {}
    for p in parameters["parameter"]:
        v = p.get("valueBase64Binary")
        out.setdefault(p["name"], []).append(base64.b64decode(v) if v else p.get("valueInteger"))
    return out


def test_cp_module_is_the_one_used():
    assert cp.DASH == "\u2014"


def _random_json(rng, depth=0):
    """A JSON value of strings, booleans and nulls (no numbers), its strings drawn from every range
    that escaping or key order could treat differently: controls, quotes, backslashes, DEL, Latin-1,
    U+2028/2029, the BMP above the surrogates, astral characters."""
    alphabet = [chr(c) for c in range(0, 0x80)] + ["\u00e9", "\u2028", "\u2029", "\ufeff", "\uffff", "\u4e2d",
                                                   "\U0001f600", "\U0010ffff", "\u00ff", "\u0100"]

    def text():
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
    pick = rng.random()
    if depth < 3 and pick < 0.3:
        return {text(): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    if depth < 3 and pick < 0.5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice([text(), text(), True, False, None])


def test_the_fast_leaf_is_the_canonical_leaf():
    """leaf_of hashes through orjson when a body holds no number: byte for byte the json module's
    canonical form (escapes, key order); bodies with numbers, or that orjson refuses, take the
    json module's path."""
    import random

    import orjson
    rng = random.Random(15)
    bodies = [json.dumps({"resourceType": "AuditEvent", "x": _random_json(rng)}, ensure_ascii=rng.random() < 0.5)
              .encode() for _ in range(2000)]
    bodies += [b'{"a": 1e-7, "b": [1, 2.50], "c": 123456789012345678901234567890}', b'{"a":"12:30, 4"}',
               b'{"a" : 1}', b'{"a":[ -2]}', b'{"a":["x",\n3]}', b'{"a":"\\":1"}',
               b'{"z": "1", "a": {"y": -0.0, "b": [true, null]}}', b'{ "b" :\n[ "x" , 3 ] }']
    for body in bodies:
        assert audit_log.leaf_of(body) == merkle.leaf_hash(audit_log.canonical(body)), body
        assert audit_log.leaf_of(body.decode()) == audit_log.leaf_of(body)
        if not audit_log.holds_number(body):
            assert audit_log.plain_leaf(json.loads(body)) == audit_log.leaf_of(body)
    fast = [b for b in bodies if not audit_log.holds_number(b)]
    assert len(fast) > 1900 and all(orjson.loads(b) == json.loads(b) for b in fast)
    assert [audit_log.holds_number(b) for b in (b'{"a" : 1}', b'{"a":[ -2]}', b'{"a":["x",\n3]}')] == [True] * 3
    assert not audit_log.holds_number(b'{"recorded":"2026-12-05T03:03:34.478Z","a":["x"]}')
    with pytest.raises(UnicodeEncodeError):         # a lone surrogate: no canonical form, as before
        audit_log.leaf_of(b'{"a":"\\ud800"}')
