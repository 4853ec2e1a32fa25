"""Bulk Data 3.0 $export (fhirserver/bulk), through the HTTP API on both stores: the Bulk Data test
kit's checks (kick-off, polling, manifest, files, cancel, parameters), who may export, consent,
restart during an export and two exports at once. The worker runs in-process (Worker.run_once)."""
from __future__ import annotations

import json
import time

import pytest

from fhirserver.bulk import jobs
from fhirserver.bulk.worker import Worker
from tests.conftest import FHIR_JSON, STORES
from tests.governance.test_policy import World
from tests.smart_auth._tokens import BASE, auth, make_app, mint

KICK = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


class Exchange:
    def __init__(self, tmp_path, backend, **settings):
        settings.setdefault("export_poll_s", 0)
        self.app = make_app(tmp_path, backend, **settings)
        self.client = self.app.test_client()
        self.token = mint(self.app, "system/*.cruds", client_id="exporter")
        self.patients = [self.create({"resourceType": "Patient", "name": [{"family": f"P{i}"}]}) for i in range(3)]
        self.obs = [self.create(obs(p, f"obs {i}")) for i, p in enumerate(self.patients)]
        self.org = self.create({"resourceType": "Organization", "name": "General"})

    def create(self, resource, token=None) -> str:
        r = self.client.post(f"/fhir/{resource['resourceType']}", data=json.dumps(resource),
                             headers={**auth(token or self.token), "Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()["id"]

    def get(self, url, token=None, **headers):
        return self.client.get(_path(url), headers={**auth(token or self.token), **headers})

    def kickoff(self, url="/fhir/$export", token=None, method="GET", body=None, **headers):
        hdrs = {**auth(token or self.token), **KICK, **headers}
        if body is not None:
            hdrs["Content-Type"] = FHIR_JSON
        return self.client.open(url, method=method, data=None if body is None else json.dumps(body), headers=hdrs)

    def work(self) -> int:
        return Worker(self.app.config["MEDPORT"]).run_once()

    def export(self, url="/fhir/$export", token=None, **kw) -> dict:
        """Kick off, run the worker, return the manifest."""
        r = self.kickoff(url, token, **kw)
        assert r.status_code == 202, r.get_data(as_text=True)
        self.work()
        done = self.get(r.headers["Content-Location"], token)
        assert done.status_code == 200, done.get_data(as_text=True)
        return done.get_json()

    def lines(self, manifest, rtype=None, token=None, listing="output") -> list[dict]:
        out = []
        for item in manifest[listing]:
            if rtype is None or item["type"] == rtype:
                r = self.get(item["url"], token)
                assert r.status_code == 200 and r.mimetype == "application/fhir+ndjson"
                rows = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
                assert len(rows) == item["count"]
                out += rows
        return out

    def ids(self, manifest, rtype, token=None) -> list[str]:
        return [r["id"] for r in self.lines(manifest, rtype, token)]


def obs(patient: str, text: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": f"Patient/{patient}"}}


def _path(url: str) -> str:
    return url[len(BASE) - len("/fhir"):] if url.startswith(BASE) else url


@pytest.fixture(params=STORES)
def ex(request, tmp_path):
    return Exchange(tmp_path, request.param)


# ---- kick-off ------------------------------------------------------------------------------------
def test_kickoff_without_a_token_is_401(ex):
    r = ex.client.get("/fhir/$export", headers=KICK)
    assert r.status_code == 401 and r.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query,headers", [
    ("", {"Prefer": ""}),                                   # Prefer: respond-async is required
    ("", {"Accept": "application/fhir+xml"}),
    ("?_outputFormat=application/xml", {}),
    ("?_since=yesterday", {}),
    ("?_type=NotAType", {}),
    ("?_typeFilter=Observation%3Fcode%3Dx%26_include%3DObservation:subject", {}),
    ("?_typeFilter=Observation%3Fnot-a-param%3Dx", {}),
    ("?includeAssociatedData=LatestProvenanceResources", {}),
    ("?organizeOutputBy=Patient", {}),
    ("?unknown=1", {}),
    ("?patient=Patient/1", {}),                              # patient: Patient- or Group-level, POST
    ("?_elements=a.b.c", {}),
])
def test_bad_kickoffs_are_400_and_queue_nothing(ex, query, headers):
    r = ex.kickoff("/fhir/$export" + query, **headers)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["resourceType"] == "OperationOutcome"
    assert ex.app.config["MEDPORT"].store.list_records(jobs.JOB) == []


def test_kickoff_polling_manifest_files(ex):
    r = ex.kickoff()
    assert r.status_code == 202
    status = r.headers["Content-Location"]
    assert status.startswith(BASE + "/bulk-status/")                     # absolute
    polled = ex.get(status)
    assert polled.status_code == 202 and polled.headers["Retry-After"] and len(polled.headers["X-Progress"]) < 100
    assert polled.data == b"" and "Content-Type" not in polled.headers       # not an empty text/html page
    ex.work()
    done = ex.get(status)
    assert done.status_code == 200 and done.mimetype == "application/json" and done.headers["Expires"]
    manifest = done.get_json()
    assert set(manifest) >= {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["requiresAccessToken"] is True and manifest["request"].endswith("/fhir/$export")
    assert manifest["error"] == []
    types = [o["type"] for o in manifest["output"]]
    assert len(types) == len(set(types))                                   # one type per file here
    assert sorted(ex.ids(manifest, "Patient")) == sorted(ex.patients)
    assert sorted(ex.ids(manifest, "Observation")) == sorted(ex.obs)
    assert ex.ids(manifest, "Organization") == [ex.org]
    for item in manifest["output"]:
        assert item["url"].startswith(BASE + "/bulk-files/")
        assert ex.client.get(_path(item["url"])).status_code == 401          # requiresAccessToken
        other = mint(ex.app, "system/*.rs", client_id="someone-else")
        assert ex.get(item["url"], other).status_code == 404                 # only the kick-off's client


def test_polling_too_fast_is_429(tmp_path):
    ex = Exchange(tmp_path, "sqlite", export_poll_s=5)
    status = ex.kickoff().headers["Content-Location"]
    assert ex.get(status).status_code == 202
    too_soon = ex.get(status)
    assert too_soon.status_code == 429 and too_soon.headers["Retry-After"] == "5"


def test_another_client_cannot_see_an_export(ex):
    status = ex.kickoff().headers["Content-Location"]
    other = mint(ex.app, "system/*.cruds", client_id="someone-else")
    assert ex.get(status, other).status_code == 404
    assert ex.client.delete(_path(status), headers=auth(other)).status_code == 404
    assert ex.get(status).status_code == 202


def test_cancel_then_404(ex):
    status = ex.kickoff().headers["Content-Location"]
    r = ex.client.delete(_path(status), headers=auth(ex.token))
    assert r.status_code == 202
    gone = ex.get(status)
    assert gone.status_code == 404 and gone.get_json()["resourceType"] == "OperationOutcome"
    ex.work()
    assert ex.app.config["MEDPORT"].store.list_records(jobs.JOB) == []


def test_cancel_a_finished_export_deletes_its_files(ex):
    r = ex.kickoff()
    ex.work()
    manifest = ex.get(r.headers["Content-Location"]).get_json()
    url = manifest["output"][0]["url"]
    assert ex.client.delete(_path(r.headers["Content-Location"]), headers=auth(ex.token)).status_code == 202
    assert ex.get(url).status_code == 404
    assert jobs.referenced_blobs(ex.app.config["MEDPORT"].store) == set()


@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_output_formats(ex, fmt):
    manifest = ex.export(f"/fhir/$export?_type=Patient&_outputFormat={fmt}")
    assert sorted(ex.ids(manifest, "Patient")) == sorted(ex.patients)


# ---- parameters ----------------------------------------------------------------------------------
def test_type_and_typefilter(ex):
    manifest = ex.export("/fhir/$export?_type=Observation,Patient"
                         "&_typeFilter=Observation%3Fcode:text%3Dobs%201")
    assert {o["type"] for o in manifest["output"]} == {"Observation", "Patient"}
    assert ex.ids(manifest, "Observation") == [ex.obs[1]]


def test_typefilter_with_token_in_over_a_shipped_value_set(ex):
    """_typeFilter is a search: token :in expands the value set like any search (search/token_sets.py)."""
    vital = ex.create({"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{ex.patients[0]}"},
                       "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}})
    vs = "http://hl7.org/fhir/ValueSet/observation-vitalsignresult"
    manifest = ex.export(f"/fhir/$export?_type=Observation&_typeFilter=Observation%3Fcode:in%3D{vs}")
    assert ex.ids(manifest, "Observation") == [vital]


def test_since_and_deleted(ex):
    time.sleep(0.01)
    since = ex.export("/fhir/$export?_type=Patient")["transactionTime"]
    time.sleep(0.01)
    changed = ex.create({"resourceType": "Patient", "name": [{"family": "New"}]})
    assert ex.client.delete(f"/fhir/Patient/{ex.patients[0]}", headers=auth(ex.token)).status_code in (200, 204)
    manifest = ex.export(f"/fhir/$export?_type=Patient&_since={since}")
    assert ex.ids(manifest, "Patient") == [changed]
    deleted = ex.lines(manifest, listing="deleted")
    assert [e["request"] for b in deleted for e in b["entry"]] == [
        {"method": "DELETE", "url": f"Patient/{ex.patients[0]}"}]
    assert all(b["type"] == "transaction" for b in deleted)


def test_elements_subset_and_are_marked(ex):
    rows = ex.lines(ex.export("/fhir/$export?_type=Patient&_elements=name"), "Patient")
    assert rows and all(set(r) <= {"resourceType", "id", "meta", "name"} for r in rows)
    assert all(any(t["code"] == "SUBSETTED" for t in r["meta"]["tag"]) for r in rows)


def test_writes_after_transaction_time_are_left_for_the_next_export(ex):
    r = ex.kickoff("/fhir/$export?_type=Observation")
    late = ex.create(obs(ex.patients[0], "late"))
    ex.work()
    manifest = ex.get(r.headers["Content-Location"]).get_json()
    assert late not in ex.ids(manifest, "Observation")
    later = ex.export(f"/fhir/$export?_type=Observation&_since={manifest['transactionTime']}")
    assert ex.ids(later, "Observation") == [late]


def test_post_kickoff_with_parameters(ex):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Observation"},
        {"name": "patient", "valueReference": {"reference": f"Patient/{ex.patients[2]}"}}]}
    manifest = ex.export("/fhir/Patient/$export", method="POST", body=body)
    assert ex.ids(manifest, "Observation") == [ex.obs[2]]


def test_patient_level_exports_compartment_types_only(ex):
    manifest = ex.export("/fhir/Patient/$export")
    assert "Organization" not in {o["type"] for o in manifest["output"]}
    assert sorted(ex.ids(manifest, "Observation")) == sorted(ex.obs)
    assert ex.kickoff("/fhir/Patient/$export?_type=Organization").status_code == 400


def test_group_export_of_two_members(ex):
    group = ex.create({"resourceType": "Group", "type": "person", "actual": True, "member": [
        {"entity": {"reference": f"Patient/{ex.patients[0]}"}},
        {"entity": {"reference": f"Patient/{ex.patients[1]}"}},
        {"entity": {"reference": f"Patient/{ex.patients[2]}"}, "inactive": True}]})
    manifest = ex.export(f"/fhir/Group/{group}/$export")
    assert sorted(ex.ids(manifest, "Patient")) == sorted(ex.patients[:2])
    assert sorted(ex.ids(manifest, "Observation")) == sorted(ex.obs[:2])
    assert ex.kickoff("/fhir/Group/no-such-group/$export").status_code == 404


# ---- who may export ------------------------------------------------------------------------------
@pytest.mark.parametrize("scope,extra", [
    ("patient/*.rs", {"patient": "P"}),
    ("user/*.rs", {}),
])
def test_only_backend_services_export(ex, scope, extra):
    extra = {k: (ex.patients[0] if v == "P" else v) for k, v in extra.items()}
    token = mint(ex.app, scope, client_id="app", **extra)
    for url in ("/fhir/$export", "/fhir/Patient/$export"):
        r = ex.kickoff(url, token)
        assert r.status_code == 403, r.get_data(as_text=True)


def test_type_outside_the_scopes_is_refused_never_widened(ex):
    token = mint(ex.app, "system/Patient.rs", client_id="narrow")
    assert ex.kickoff("/fhir/$export?_type=Observation", token).status_code == 403
    manifest = ex.export("/fhir/$export", token)
    assert {o["type"] for o in manifest["output"]} == {"Patient"}


def test_a_hospital_exports_what_it_holds_and_what_consent_shares(tmp_path):
    w = World(tmp_path, "sqlite", export_poll_s=0)
    ex = Exchange.__new__(Exchange)
    ex.app, ex.client, ex.token = w.app, w.client, w.b
    assert ex.ids(ex.export("/fhir/$export?_type=Observation"), "Observation") == []
    consent = w.consent(classes=("Observation",))
    assert w.send(w.p1_token, "POST", "/fhir/Consent", consent).status_code == 201
    assert ex.ids(ex.export("/fhir/$export?_type=Observation,Condition"), "Observation") == [w.obs1]
    held = ex.export("/fhir/Patient/$export?_type=Observation", w.a)
    assert sorted(ex.ids(held, "Observation", w.a)) == sorted([w.obs1, w.obs2])


def test_a_disabled_client_export_fails_at_run_time(ex):
    from fhirserver.smart_auth.clients import Clients
    store = ex.app.config["MEDPORT"].store
    clients = Clients(store)
    client, _secret = clients.add("Lab export", "confidential-symmetric", ["https://lab.test/cb"],
                                 ["system/*.rs"])
    token = mint(ex.app, "system/*.rs", client_id=client.client_id)
    status = ex.kickoff(token=token).headers["Content-Location"]
    clients.disable(client.client_id)
    ex.work()
    # the job failed: its client can no longer ask, and nothing was written
    assert jobs.referenced_blobs(store) == set()
    assert ex.get(status, token).status_code == 401


# ---- durability and concurrency ------------------------------------------------------------------
def test_a_worker_that_dies_mid_export_is_continued_by_another(tmp_path, monkeypatch):
    ex = Exchange(tmp_path, "sqlite", export_file_max_bytes=1)     # a file per page
    monkeypatch.setattr("fhirserver.bulk.run.PAGE", 1)
    for i in range(5):
        ex.create(obs(ex.patients[0], f"extra {i}"))
    status = ex.kickoff("/fhir/$export?_type=Observation").headers["Content-Location"]
    store = ex.app.config["MEDPORT"].store
    real_put, calls = store.blobs.put, []

    def dying_put(chunks, max_bytes):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit("worker killed")
        return real_put(chunks, max_bytes)
    monkeypatch.setattr(store.blobs, "put", dying_put)
    with pytest.raises(SystemExit):
        ex.work()
    monkeypatch.setattr(store.blobs, "put", real_put)
    job = store.list_records(jobs.JOB)[0][1]
    assert job["state"] == "running" and len(job["output"]) == 3
    store.delete_record(jobs.LEASE, job["id"])        # the dead worker's lease ran out
    ex.work()
    manifest = ex.get(status).get_json()
    ids = ex.ids(manifest, "Observation")
    assert len(ids) == len(set(ids)) == 8                                  # no gap, no duplicate


def test_two_exports_at_once(ex):
    a = ex.kickoff("/fhir/$export?_type=Patient").headers["Content-Location"]
    b = ex.kickoff("/fhir/$export?_type=Observation").headers["Content-Location"]
    ex.work()
    assert sorted(ex.ids(ex.get(a).get_json(), "Patient")) == sorted(ex.patients)
    assert sorted(ex.ids(ex.get(b).get_json(), "Observation")) == sorted(ex.obs)


def test_too_many_exports_of_one_client_is_429(tmp_path):
    ex = Exchange(tmp_path, "sqlite", export_max_jobs=1)
    assert ex.kickoff().status_code == 202
    r = ex.kickoff()
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_expired_exports_are_cleaned_up(tmp_path):
    ex = Exchange(tmp_path, "sqlite", export_expiry_s=0)
    status = ex.kickoff().headers["Content-Location"]
    ex.work()
    ex.work()            # the next round removes what expired
    assert ex.get(status).status_code == 404
    assert jobs.referenced_blobs(ex.app.config["MEDPORT"].store) == set()


# ---- the audit trail through $export (docs/bulk-export.md, "The audit trail") ----------------------
def _regulator(ex) -> str:
    from fhirserver.smart_auth.clients import Clients
    client, _secret = Clients(ex.app.config["MEDPORT"].store).add(
        "Health regulator", "confidential-symmetric", ["https://regulator.test/cb"], ["system/*.rs"], regulator=True)
    return mint(ex.app, "system/*.rs", subject=client.client_id, client_id=client.client_id)


def _parameters(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["parameter"]


def test_a_regulator_exports_the_audit_trail_with_the_checkpoint_that_signs_it(ex):
    import base64

    from fhirserver.audit_log import log as audit_log
    from fhirserver.audit_log import merkle
    from fhirserver.audit_log.export import check_signed
    assert ex.get(f"/fhir/Observation/{ex.obs[0]}").status_code == 200      # recorded just before the kick-off
    regulator = _regulator(ex)
    manifest = ex.export("/fhir/$export?_type=AuditEvent", regulator)
    events = ex.lines(manifest, "AuditEvent", regulator)
    read = [e for e in events if e["subtype"][0]["code"] == "read"
            and any(x.get("what", {}).get("reference", "").startswith(f"Observation/{ex.obs[0]}") for x in e["entity"])]
    assert len(read) == 1            # the read before the kick-off is in it (drained at the kick-off)
    log = manifest["extension"]["auditLog"]
    signed = check_signed(log["checkpoint"], log["verifierKeys"])       # the manifest's own keys...
    assert signed == check_signed(log["checkpoint"], None, ex.app.config["MEDPORT"].store)  # ...are the log's
    assert signed.size == log["treeSize"] >= len(events)
    # each exported event: its canonical JSON is the leaf at its index, proven in the signed tree
    listed = _parameters(ex.get(f"/fhir/$audit-entries?start=0&end={signed.size}", regulator))
    index = {}
    for p in listed:
        if p["name"] == "entry":
            part = {x["name"]: x for x in p["part"]}
            index[part["auditEvent"]["valueReference"]["reference"]] = (
                part["index"]["valueInteger"], base64.b64decode(part["leafHash"]["valueBase64Binary"]))
    for event in events:
        at, leaf = index[f"AuditEvent/{event['id']}/_history/{event['meta']['versionId']}"]
        assert merkle.leaf_hash(audit_log.canonical(json.dumps(event).encode())) == leaf
        proof = _parameters(ex.get(f"{log['inclusionProof']}?index={at}&size={signed.size}", regulator))
        path = [base64.b64decode(p["valueBase64Binary"]) for p in proof if p["name"] == "hash"]
        assert merkle.verify_inclusion(at, signed.size, leaf, path, signed.root)
    # an export without AuditEvent carries no checkpoint; nor does one by a client that does not oversee
    # the log (the size of the whole log is not a hospital's to know: $audit-checkpoint refuses it too)
    assert "extension" not in ex.export("/fhir/$export?_type=Observation", regulator)
    assert ex.get("/fhir/$audit-checkpoint").status_code == 403
    assert "extension" not in ex.export("/fhir/$export?_type=AuditEvent")
