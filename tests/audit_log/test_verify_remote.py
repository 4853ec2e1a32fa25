"""`medport audit verify --from-url` (audit_log/remote.py, docs/audit.md): a regulator verifies a running
server's log over HTTP alone, on both stores: an honest log verifies; an AuditEvent changed, deleted,
swapped or slipped in behind the server's back is named at its index; a tail truncated (and re-signed
with the key the store holds) is found against a checkpoint held outside; another key's checkpoint is a
bad checkpoint. The CLI is driven through the Flask test client, and once through `medport serve`."""
from __future__ import annotations

import json
import time

import pytest
import requests

from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log import remote
from fhirserver.audit_log.export import verifier_keys
from fhirserver.audit_log.keys import AuditKeys
from fhirserver.cli import main
from fhirserver.smart_auth.accounts import Users
from tests.audit_log.test_log import _tamper, stored_events, write_events
from tests.conftest import STORES
from tests.smart_auth._tokens import BASE, auth, make_app, mint

PW = "correct horse battery"


class Server:
    """A server with authorization on, a regulator, an administrator and a hospital's practitioner."""

    def __init__(self, tmp_path, backend):
        self.backend = backend
        self.app = make_app(tmp_path, backend)
        self.ctx = self.app.config["MEDPORT"]
        self.ctx.settings.audit_checkpoint_entries = 1          # every integration signs
        users = Users(self.ctx.store)
        users.add("inspector", PW, "regulator")
        users.add("root", PW, "admin")
        users.add("doc", PW, "practitioner", "Practitioner/d")
        self.reg = mint(self.app, "user/*.rs", subject="inspector", role="regulator")
        self.admin = mint(self.app, "user/*.cruds", subject="root", role="admin")
        self.doc = mint(self.app, "user/*.rs", subject="doc", role="practitioner")
        self.client = self.app.test_client()
        audit_log.Leaves._cache.pop(id(self.ctx.store), None)

    def get(self, url: str, headers: dict) -> tuple[int, bytes]:
        r = self.client.get(url, headers=headers)
        return r.status_code, r.get_data()

    def integrate(self) -> str:
        audit_log.integrate(self.ctx.store, self.ctx.settings)
        return audit_log.latest_checkpoint(self.ctx.store)

    def keys(self) -> list[str]:
        return verifier_keys(self.ctx.store, self.ctx.settings)

    def verify(self, token=None, keys="mine", external=None, **kw):
        return remote.verify_remote(BASE, self.get, self.keys() if keys == "mine" else keys, external,
                                    token or self.reg, **kw)


@pytest.fixture(params=STORES)
def s(request, tmp_path):
    return Server(tmp_path, request.param)


def test_an_honest_log_verifies_and_keeps_verifying_as_it_grows(s):
    write_events(s.ctx, 12)
    assert s.client.get("/fhir/Patient/nobody", headers=auth(s.doc)).status_code in (403, 404)
    first = s.integrate()
    report = s.verify()
    assert report.ok, report.problems
    assert report.size == 13 and "signed by fhir.test/audit+" in report.note
    # the verifier's own reads are audited too: the log grew; verify again, against the first checkpoint
    assert audit_log.size(s.ctx.store) == 13
    s.integrate()
    assert audit_log.size(s.ctx.store) > 13
    report = s.verify(token=s.admin, external=first)
    assert report.ok, report.problems
    assert report.size == audit_log.size(s.ctx.store)


def test_the_served_auditevent_is_the_stored_body(s):
    """What the leaf is recomputed from: the server adds nothing on the way out (meta as stored)."""
    write_events(s.ctx, 3)
    s.integrate()
    entries = audit_log.all_entries(s.ctx.store)
    served = remote._by_id(remote._Client(BASE, s.get, s.reg), [e.id for e in entries])
    for e in entries:
        assert served[e.id] == (str(e.version), e.leaf)
        assert e.leaf == audit_log.leaf_of(
            s.ctx.store.vread("AuditEvent", e.id, e.version).body)


@pytest.mark.parametrize("kind,index,what", [("changed", 3, "changed entry"), ("deleted", 3, "deleted entry"),
                                             ("swapped", 3, "swapped entries")])
def test_each_tamper_in_the_store_is_found_at_its_index(tmp_path, kind, index, what):
    """SQLite, where the search serves the version row (MongoDB serves its resources collection's copy)."""
    s = Server(tmp_path, "sqlite")
    write_events(s.ctx, 10)
    s.integrate()
    assert s.verify().ok
    _tamper(s.ctx.store, s.backend, kind, stored_events(s.ctx.store)[:10])
    report = s.verify()
    assert (report.first.index, report.first.kind) == (index, what), report.problems


def test_an_updated_auditevent_is_a_changed_entry(tmp_path):
    s = Server(tmp_path, "sqlite")
    write_events(s.ctx, 5)
    s.integrate()
    v = stored_events(s.ctx.store)[2]
    body = json.loads(v.body)
    body["outcome"] = "8"
    body["meta"]["versionId"] = "2"
    conn = s.ctx.store._conn()
    rid = conn.execute("SELECT rid FROM resource WHERE type='AuditEvent' AND id=?", (v.id,)).fetchone()[0]
    conn.execute("INSERT INTO version (rid, version, type, last_updated, method, body) "
                 "VALUES (?, 2, 'AuditEvent', ?, 'PUT', ?)", (rid, v.last_updated, json.dumps(body).encode()))
    conn.execute("UPDATE resource SET version=2 WHERE rid=?", (rid,))
    conn.commit()
    report = s.verify()
    assert (report.first.index, report.first.kind) == (2, "changed entry"), report.problems
    assert "served as version 2" in report.first.detail


def test_a_truncated_tail_resigned_with_the_stored_key_is_found_against_a_checkpoint_held_outside(s):
    write_events(s.ctx, 6)
    s.integrate()
    write_events(s.ctx, 4, 6)
    held = s.integrate()
    assert AuditKeys(s.ctx.store).verify(held).size == 10
    # the last batch, its events and the checkpoints are removed; the store's key signs the shorter log
    store = s.ctx.store
    for k, _v in store.list_records(audit_log.CHECKPOINT_KIND):
        store.delete_record(audit_log.CHECKPOINT_KIND, k)
    store.delete_record(audit_log.STATE_KIND, "checkpoint")
    store.delete_record(audit_log.STATE_KIND, "head")
    store.delete_record(audit_log.BATCH_KIND, audit_log.key_of(6))
    events = stored_events(store)[:10]
    if s.backend == "sqlite":
        conn = store._conn()
        for v in events[6:]:
            conn.execute("DELETE FROM version WHERE rid IN (SELECT rid FROM resource WHERE id = ?)", (v.id,))
        conn.commit()
    else:
        for v in events[6:]:
            store.versions.delete_one({"r": f"AuditEvent/{v.id}"})
    audit_log.Leaves._cache.clear()                  # the server restarted
    assert AuditKeys(store).verify(s.integrate()).size == 6
    assert s.verify().ok                             # the server alone looks whole
    report = s.verify(external=held)
    assert (report.first.index, report.first.kind) == (6, "truncated tail"), report.problems


def test_a_rewritten_history_is_found_against_a_checkpoint_held_outside(tmp_path):
    """The leaf hashes themselves rewritten (and re-signed): the AuditEvents agree with the log, the
    root at the held size does not."""
    s = Server(tmp_path, "sqlite")
    write_events(s.ctx, 6)
    held = s.integrate()
    store = s.ctx.store
    batch = store.get_record(audit_log.BATCH_KIND, audit_log.key_of(0))
    v = store.vread("AuditEvent", batch["entries"][4][0], 1)
    body = json.loads(v.body)
    body["outcome"] = "8"
    new = json.dumps(body).encode()
    if s.backend == "sqlite":
        conn = store._conn()
        conn.execute("UPDATE version SET body=? WHERE rid IN (SELECT rid FROM resource WHERE id=?)", (new, v.id))
        conn.commit()
    else:
        store.versions.update_one({"r": f"AuditEvent/{v.id}"}, {"$set": {"body": new}})
    batch["entries"][4][2] = audit_log.leaf_of(new).hex()
    batch["range"] = audit_log._range_json(audit_log.extend([], (bytes.fromhex(e[2]) for e in batch["entries"])))
    store.put_record(audit_log.BATCH_KIND, audit_log.key_of(0), batch)
    for k, _v in store.list_records(audit_log.CHECKPOINT_KIND):
        store.delete_record(audit_log.CHECKPOINT_KIND, k)
    store.delete_record(audit_log.STATE_KIND, "checkpoint")
    audit_log.Leaves._cache.clear()
    s.integrate()
    assert s.verify().ok
    report = s.verify(external=held)
    assert report.first.kind == "changed entry", report.problems
    assert "checkpoint held outside" in report.first.detail


def test_another_key_or_a_forged_checkpoint_is_a_bad_checkpoint(s):
    write_events(s.ctx, 4)
    text = s.integrate()
    mine = s.keys()
    AuditKeys(s.ctx.store).rotate()
    other = [k for k in s.keys() if k not in mine]
    report = s.verify(keys=other)
    assert report.first.kind == "bad checkpoint", report.problems
    body, _, sig = text.partition("\n\n")
    forged = body.replace("\n4\n", "\n3\n") + "\n\n" + sig
    report = s.verify(keys=mine, external=forged)
    assert report.first.kind == "bad checkpoint" and "held outside" in report.first.detail


def test_only_regulators_and_administrators_may_verify(s):
    write_events(s.ctx, 2)
    s.integrate()
    with pytest.raises(remote.RemoteError, match="403"):
        s.verify(token=s.doc)


# ---- the CLI ---------------------------------------------------------------------------------------------
def test_cli_from_url(tmp_path, monkeypatch, capsys):
    s = Server(tmp_path, "sqlite")
    write_events(s.ctx, 10)
    s.integrate()
    monkeypatch.setattr(remote, "http_get", lambda timeout=120.0: s.get)
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text("\n".join(s.keys()) + "\n")
    url = ["audit", "verify", "--from-url", BASE]
    assert main(url + ["--token", s.reg]) == 2                    # no key: refused
    assert "--public-key" in capsys.readouterr().err
    assert main(url + ["--token", s.reg, "--public-key", str(keyfile)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 10 entries verified") and "signed by fhir.test/audit+" in out
    monkeypatch.setenv("MEDPORT_TOKEN", s.admin)
    assert main(url + ["--trust-server-key"]) == 0
    assert "signature was NOT checked" in capsys.readouterr().out
    assert main(url + ["--token", s.doc, "--public-key", str(keyfile)]) == 2
    assert "403" in capsys.readouterr().err
    _tamper(s.ctx.store, s.backend, "changed", stored_events(s.ctx.store)[:10])
    assert main(url + ["--public-key", str(keyfile)]) == 1
    assert "FAILED at index 3: changed entry" in capsys.readouterr().out


def test_cli_against_medport_serve(tmp_path, capsys):
    """Over real HTTP (gunicorn), authorization off on loopback: anyone reads the log."""
    from tests.blackbox._server import MedportServer
    srv = MedportServer(str(tmp_path / "store.db"), str(tmp_path), workers=1, threads=2,
                        env={"MEDPORT_AUDIT_INTEGRATOR": "on", "MEDPORT_AUDIT_INTEGRATION_S": "0.2", "MEDPORT_AUDIT_CHECKPOINT_S": "0"})
    srv.start()
    try:
        for _ in range(3):
            assert requests.get(f"{srv.base}/metadata", timeout=30).status_code == 200
        deadline = time.monotonic() + 20
        while True:
            r = requests.get(f"{srv.base}/$audit-checkpoint", timeout=30)
            if r.status_code == 200 and int(r.text.split("\n")[1]) >= 3:
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        assert main(["audit", "public-key", "--store", srv.store_url]) == 0
        (tmp_path / "keys.txt").write_text(capsys.readouterr().out)
        assert main(["audit", "verify", "--from-url", srv.base, "--public-key", str(tmp_path / "keys.txt")]) == 0
        assert capsys.readouterr().out.startswith("OK: ")
    finally:
        srv.cleanup()
