"""Every FHIR interaction, success or failure, leaves BALP AuditEvents (audit_log/trail.py), one per
patient touched, stored before the response; a failing audit write fails the request."""
from __future__ import annotations

import base64
import json
from urllib.parse import unquote

import pytest

from fhirserver.audit_log import group_commit, journal
from tests._threads import run_clients
from tests.audit_log.balp_profile import assert_balp
from tests.conftest import FHIR_JSON, patient, post

BASE = "http://fhir.test/fhir"
INTERACTION = "http://hl7.org/fhir/restful-interaction"


def events(ctx) -> list[dict]:
    """Every stored AuditEvent, oldest first (the audit journal drained first)."""
    journal.drain(ctx.store, ctx.base)
    page = ctx.store.history("AuditEvent", limit=10000)
    return [json.loads(v.body) for v in reversed(page.items) if v.body]


def new_events(ctx, before: int) -> list[dict]:
    return events(ctx)[before:]


def code(event: dict) -> str:
    return next(c["code"] for c in event["subtype"] if c["system"] == INTERACTION)


def patients(event: dict) -> list[str]:
    return [e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "1"]


def data(event: dict) -> list[str]:
    return [e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "4"]


def query(event: dict) -> str | None:
    found = [e["query"] for e in event["entity"] if e.get("role", {}).get("code") == "24"]
    return unquote(base64.b64decode(found[0]).decode()) if found else None


def request_ids(event: dict) -> list[str]:
    return [e["what"]["identifier"]["value"] for e in event["entity"]
            if e.get("type", {}).get("code") == "XrequestId"]


def one_call(client, ctx, method: str, url: str, **kw) -> tuple[object, list[dict]]:
    """The response of one request and the AuditEvents it left, each checked against BALP."""
    before = len(events(ctx))
    r = client.open(url, method=method, **kw)
    found = new_events(ctx, before)
    for e in found:
        assert_balp(e, BASE)
    return r, found


@pytest.fixture
def asha(client):
    return post(client, patient()).json["id"]


def obs(pid: str, value: str = "1") -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "hb"},
            "subject": {"reference": f"Patient/{pid}"}, "valueString": value}


def test_every_interaction_kind_is_recorded(client, ctx, asha):
    oid = post(client, obs(asha)).json["id"]
    cases = [
        ("GET", f"/fhir/Observation/{oid}", {}, "read", "R", 200),
        ("GET", f"/fhir/Observation/{oid}/_history/1", {}, "vread", "R", 200),
        ("GET", f"/fhir/Observation/{oid}/_history", {}, "history-instance", "R", 200),
        ("GET", "/fhir/Observation/_history", {}, "history-type", "R", 200),
        ("GET", "/fhir/_history", {}, "history-system", "R", 200),
        ("GET", f"/fhir/Observation?subject=Patient/{asha}", {}, "search-type", "E", 200),
        ("POST", "/fhir/Observation/_search", {"data": {"subject": f"Patient/{asha}"}}, "search-type", "E", 200),
        ("GET", "/fhir?_type=Observation", {}, "search-system", "E", 200),
        ("GET", "/fhir/metadata", {}, "capabilities", "R", 200),
        ("PUT", f"/fhir/Observation/{oid}", {"json": {**obs(asha, "2"), "id": oid}}, "update", "U", 200),
        ("PATCH", f"/fhir/Observation/{oid}", {"json": [{"op": "replace", "path": "/valueString", "value": "3"}],
                                               "headers": {"Content-Type": "application/json-patch+json"}},
         "patch", "U", 200),
        ("GET", f"/fhir/Patient/{asha}/$validate", {}, "operation", "E", 200),
        ("GET", f"/fhir/Patient/{asha}/Observation", {}, "search-type", "E", 200),
        ("HEAD", f"/fhir/Observation/{oid}", {}, "read", "R", 200),
        ("DELETE", f"/fhir/Observation/{oid}", {}, "delete", "D", 204),
        ("POST", "/fhir/Observation", {"json": obs(asha)}, "create", "C", 201),
    ]
    for method, url, kw, expected, action, status in cases:
        r, found = one_call(client, ctx, method, url, **kw)
        assert r.status_code == status, (url, r.get_data(as_text=True))
        mine = [e for e in found if code(e) == expected]
        assert mine, (method, url, [code(e) for e in found])
        for e in mine:
            assert e["action"] == action and e["outcome"] == "0"
            assert request_ids(e) == [r.headers["X-Request-Id"]]
        if expected not in ("capabilities", "history-system", "history-type"):
            assert any(patients(e) == [f"Patient/{asha}"] for e in mine), (url, mine)
        if expected == "search-type" and "?" in url:
            # the patient's event names parameters only; the one outside any compartment, the query
            assert [query(e) for e in mine if patients(e)][0].endswith("subject=*")
            assert any(f"Patient/{asha}" in (query(e) or "") for e in mine if not patients(e))
        if expected == "operation":
            assert {"system": "https://medport.health/fhir/CodeSystem/operation", "code": "$validate",
                    "display": "$validate"} in mine[0]["subtype"]
        if expected in ("read", "vread", "update", "patch", "create"):
            assert data(mine[0])[0].startswith("Observation/") and "/_history/" in data(mine[0])[0]


def test_failures_are_recorded_with_their_outcome(client, ctx, asha):
    r, found = one_call(client, ctx, "GET", "/fhir/Observation/nope")
    assert r.status_code == 404
    [e] = found
    assert (code(e), e["outcome"]) == ("read", "4") and "nope" in e["outcomeDesc"]
    assert data(e) == ["Observation/nope"]
    r, found = one_call(client, ctx, "POST", "/fhir/Observation", json={**obs(asha), "status": "bogus"},
                        headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400
    [e] = found
    assert (code(e), e["action"], e["outcome"]) == ("create", "C", "4")
    r, found = one_call(client, ctx, "GET", "/fhir/Observation?bogus-param=1",
                        headers={"Prefer": "handling=strict"})
    assert r.status_code == 400 and [(code(e), e["outcome"]) for e in found] == [("search-type", "4")]


def test_one_event_per_patient_touched(client, ctx, asha):
    ravi = post(client, patient(name=[{"family": "Kumar"}])).json["id"]
    post(client, obs(asha))
    post(client, obs(ravi))
    _r, found = one_call(client, ctx, "GET", f"/fhir/Observation?subject=Patient/{asha},Patient/{ravi}")
    about = [e for e in found if patients(e)]
    assert sorted(p for e in about for p in patients(e)) == sorted([f"Patient/{asha}", f"Patient/{ravi}"])
    assert all(len(patients(e)) == 1 for e in about)
    assert len({request_ids(e)[0] for e in found}) == 1
    # neither patient's event names the other: each holds the query's parameter names only...
    for e in about:
        assert query(e) == "Observation?subject=*"
    # ...and one event outside both compartments holds the query as sent
    [whole] = [e for e in found if not patients(e)]
    assert query(whole) == f"Observation?subject=Patient/{asha},Patient/{ravi}"


def test_batch_entries_are_each_recorded(client, ctx, asha):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": obs(asha)},
        {"request": {"method": "GET", "url": f"Patient/{asha}"}},
        {"request": {"method": "GET", "url": "Observation/missing"}},
    ]}
    r, found = one_call(client, ctx, "POST", "/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    summary = sorted((code(e), e["outcome"]) for e in found)
    assert summary == [("batch", "0"), ("create", "0"), ("read", "0"), ("read", "4")]


def test_transaction_entries_commit_with_their_events(client, ctx, asha):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": obs(asha)},
        {"request": {"method": "GET", "url": f"Patient/{asha}"}},
    ]}
    r, found = one_call(client, ctx, "POST", "/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    assert sorted(code(e) for e in found) == ["create", "read", "transaction"]
    bad = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": obs(asha)},
        {"request": {"method": "POST", "url": "Observation"}, "resource": {**obs(asha), "status": "bogus"}},
    ]}
    r, found = one_call(client, ctx, "POST", "/fhir", json=bad, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400
    # nothing of the transaction happened: only its failure (and the failing entry) are recorded
    assert all(e["outcome"] == "4" for e in found) and "transaction" in [code(e) for e in found]


def test_a_failing_audit_write_fails_a_read(client, ctx, asha, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("audit store down")
    monkeypatch.setattr(journal, "append", broken)
    r = client.get(f"/fhir/Patient/{asha}")
    assert r.status_code == 503 and r.json["resourceType"] == "OperationOutcome"
    assert "audit" in r.json["issue"][0]["diagnostics"]


def test_a_failing_audit_write_commits_no_write(client, ctx, monkeypatch):
    from fhirserver.audit_log import trail

    def broken(self, tx):
        raise RuntimeError("audit store down")
    monkeypatch.setattr(trail.Trail, "persist", broken)
    r = post(client, patient(name=[{"family": "Never"}]))
    assert r.status_code in (500, 503) and r.json["resourceType"] == "OperationOutcome"
    monkeypatch.undo()
    assert client.get("/fhir/Patient?family=Never").json.get("total", 0) == 0
    assert ctx.store.history("Patient", limit=100).items == [] or all(
        b"Never" not in (v.body or b"") for v in ctx.store.history("Patient", limit=100).items)


def test_group_commit_shares_one_transaction_and_each_waits_for_its_own(ctx):
    import threading
    committer = group_commit.GroupCommit(ctx.store, ctx.base)
    writes = []
    real = committer._write

    def counting(evs):
        writes.append(len(evs))
        real(evs)
    committer._write = counting
    from fhirserver.audit_log import balp
    one = balp.event(ctx.base, balp.Actor(), balp.Interaction("read", 200, "Patient/x"), "x", "r1")
    before = len(events(ctx))
    threads = [threading.Thread(target=committer.submit, args=([dict(one)],)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(events(ctx)) - before == 20 and sum(writes) == 20


def test_group_commit_under_load_each_request_returns_after_its_own_events_only(monkeypatch):
    """Many threads, small batches, requests in progress counted (begin) and some that never submit
    (end), the queue taken once the writer is held: every event is written once, each submit returns only once its own are written, a failing
    event fails its own request alone, and the lead always passes on (no thread is left waiting)."""
    import contextlib
    import threading
    monkeypatch.setattr(group_commit, "MAX_BATCH", 3)
    written: list[str] = []
    lock = threading.Lock()

    class Store:                            # one writer at a time, as the store's transaction()
        writer = threading.Lock()
        pending: list[str] = []

        @contextlib.contextmanager
        def transaction(self):
            with self.writer:
                self.pending.clear()
                yield
                with lock:
                    written.extend(self.pending)

    class Recording(group_commit.GroupCommit):
        def _write(self, events):
            if any(e["n"].endswith("-bad") for e in events):
                raise ValueError("refused")
            if self.store.writer.locked():      # inside the leader's transaction: written at its commit
                self.store.pending.extend(e["n"] for e in events)
            else:
                with self.store.transaction():
                    self.store.pending.extend(e["n"] for e in events)
    committer = Recording(Store(), "")
    problems: list[str] = []

    def client(k):
        for i in range(60):
            name = f"{k}-{i}" + ("-bad" if i % 17 == 5 else "")
            committer.begin()
            if i % 7 == 3:
                committer.end()             # a request that stored nothing
                continue
            try:
                committer.submit([{"n": name}], began=True)
                ok = True
            except ValueError:
                ok = False
            with lock:
                if ok != (not name.endswith("-bad")) or ok != (name in written):
                    problems.append(name)
    assert run_clients(client) and problems == []
    assert len(written) == len(set(written)) == 8 * sum(1 for i in range(60) if i % 7 != 3 and i % 17 != 5)
    assert committer._active == 0 and not committer._busy and not committer._queue


def test_group_commit_fails_only_the_requests_whose_events_fail(ctx):
    committer = group_commit.GroupCommit(ctx.store, ctx.base)
    from fhirserver.audit_log import balp
    good = balp.event(ctx.base, balp.Actor(), balp.Interaction("read", 200, "Patient/x"), "x", "r1")
    tickets = [group_commit._Ticket([dict(good)]), group_commit._Ticket([{"resourceType": "AuditEvent",
                                                                           "type": object()}])]
    committer._commit(tickets)
    assert tickets[0].error is None and tickets[1].error is not None


def test_a_patient_probing_another_patient_leaves_no_event_shown_to_them(tmp_path, backend):
    from tests.smart_auth._tokens import auth, make_app, mint
    app = make_app(tmp_path, backend)
    c, ctx = app.test_client(), app.config["MEDPORT"]
    admin = auth(mint(app, "system/*.cruds", client_id="ehr"))
    p1 = c.post("/fhir/Patient", json=patient(), headers={**admin, "Content-Type": FHIR_JSON}).json["id"]
    p2 = c.post("/fhir/Patient", json=patient(), headers={**admin, "Content-Type": FHIR_JSON}).json["id"]
    from fhirserver.smart_auth.accounts import Users
    Users(ctx.store).add("p1-user", "correct horse battery", "patient", f"Patient/{p1}")
    mine = auth(mint(app, "patient/*.rs", subject="p1-user", client_id="phone", patient=p1, role="patient",
                     fhirUser=f"{BASE}/Patient/{p1}"))
    before = len(events(ctx))
    for url in (f"/fhir/Observation?subject=Patient/{p2}", f"/fhir/Patient/{p2}", f"/fhir/AuditEvent?patient={p2}"):
        c.get(url, headers=mine)
    probes = new_events(ctx, before)
    assert len(probes) == 3, [(code(e), e["outcome"], patients(e)) for e in probes]
    for e in probes:
        assert_balp(e, BASE)
        assert patients(e) == [f"Patient/{p1}"], (e["subtype"], e["agent"])  # recorded as p1's own query, not shown to p2
        user = next(a for a in e["agent"] if a["type"]["coding"][0]["code"] == "IRCP")
        assert user["who"] == {"reference": f"Patient/{p1}"} and user["altId"] == "p1-user"
        client_agent = next(a for a in e["agent"] if a["type"]["coding"][0]["code"] == "110153")
        assert client_agent["who"]["identifier"]["value"] == "phone"


def test_a_huge_query_is_cut_with_its_digest_kept(client, ctx):
    import hashlib

    from fhirserver.audit_log.balp import MAX_QUERY_BYTES
    text = "x" * 20000
    _r, found = one_call(client, ctx, "POST", "/fhir/Observation/_search", data={"_text": text})
    [e] = found
    [entity] = [x for x in e["entity"] if x.get("role", {}).get("code") == "24"]
    kept = base64.b64decode(entity["query"])
    full = f"Observation/_search?_text={text}".encode()
    assert len(kept) == MAX_QUERY_BYTES and full.startswith(kept.split(b" [cut: ")[0])
    assert kept.endswith(f" [cut: {len(full)} bytes, sha256 {hashlib.sha256(full).hexdigest()}]".encode())


def test_a_retried_request_records_only_what_its_last_attempt_did(client, ctx, monkeypatch):
    """A transient store conflict re-runs the request (resources/retry.py): what the rolled-back
    attempt did is not recorded."""
    from fhirserver.errors import StoreRetry
    from fhirserver.governance import provenance
    real, calls = provenance._write, []

    def conflict_once(recorder):
        calls.append(1)
        if len(calls) == 1:
            raise StoreRetry("write conflict")
        return real(recorder)
    monkeypatch.setattr(provenance, "_write", conflict_once)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Patient"}, "resource": patient()},
        {"request": {"method": "GET", "url": "Patient?_count=1"}}]}
    r, found = one_call(client, ctx, "POST", "/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200 and len(calls) == 2
    created = r.json["entry"][0]["response"]["location"].split("/_history")[0]
    assert [code(e) for e in found].count("create") == 1
    [create] = [e for e in found if code(e) == "create"]
    assert data(create)[0].startswith(created + "/_history/")
    assert [code(e) for e in found].count("transaction") == 1


def test_a_conditional_create_that_matches_records_the_match_and_claims_no_create(client, ctx, asha):
    mrn = {"system": "http://hospital.test/mrn", "value": "M-1"}
    first = post(client, patient(identifier=[mrn]))
    r, found = one_call(client, ctx, "POST", "/fhir/Patient", json=patient(identifier=[mrn]),
                        headers={"Content-Type": FHIR_JSON, "If-None-Exist": "identifier=http://hospital.test/mrn|M-1"})
    assert r.status_code == 200
    [e] = found
    assert code(e) == "create" and e["outcome"] == "0" and "profile" not in e["meta"]   # nothing was created
    assert data(e) == [f"Patient/{first.json['id']}/_history/1"]
    assert patients(e) == [f"Patient/{first.json['id']}"]


def test_a_failure_building_the_events_withholds_the_answer(client, ctx, asha, monkeypatch):
    from fhirserver.audit_log import trail

    def broken(self):
        raise RuntimeError("cannot build the events")
    monkeypatch.setattr(trail.Trail, "pending", broken)
    r = client.get(f"/fhir/Patient/{asha}")
    assert r.status_code == 503 and r.json["resourceType"] == "OperationOutcome"


def test_a_failed_post_search_records_its_form(client, ctx):
    r, found = one_call(client, ctx, "POST", "/fhir/Observation/_search", data={"bogus-param": "1"},
                        headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    [e] = found
    assert e["outcome"] == "4" and query(e) == "Observation/_search?bogus-param=1"
