"""The audit log's endpoints (audit_log/routes.py), on both stores: regulators and administrators use
them all; a patient may prove that an AuditEvent about them is in the log ($audit-proof of its entry)
and is refused (403) every other entry and the other endpoints."""
from __future__ import annotations

import base64

import pytest

from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log import merkle
from tests.audit_log.test_auditevent_search import Audited
from tests.conftest import STORES


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Audited(tmp_path, request.param)


def entries(w) -> dict[str, int]:
    """AuditEvent id -> its index in the log, after integrating what was written."""
    ctx = w.app.config["MEDPORT"]
    audit_log.integrate(ctx.store, ctx.settings)
    r = w.send(w.admin, "GET", "/fhir/$audit-entries?start=0")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = {}
    for p in r.get_json()["parameter"]:
        if p["name"] == "entry":
            part = {x["name"]: x for x in p["part"]}
            out[part["auditEvent"]["valueReference"]["reference"].split("/")[1]] = part["index"]["valueInteger"]
    return out


def test_a_patient_proves_an_event_about_them_and_nothing_else(w):
    about_p1 = {e["id"] for e in w.events(w.reg, f"patient={w.p1}")}
    about_p2 = {e["id"] for e in w.events(w.reg, f"patient={w.p2}")} - about_p1
    index = entries(w)
    mine = next(index[i] for i in about_p1 if i in index)
    r = w.send(w.p1_token, "GET", f"/fhir/$audit-proof?index={mine}")
    assert r.status_code == 200, r.get_data(as_text=True)
    got = {p["name"]: p for p in r.get_json()["parameter"]}
    path = [base64.b64decode(p["valueBase64Binary"]) for p in r.get_json()["parameter"] if p["name"] == "hash"]
    leaf, root = (base64.b64decode(got[k]["valueBase64Binary"]) for k in ("leafHash", "rootHash"))
    assert merkle.verify_inclusion(mine, got["size"]["valueInteger"], leaf, path, root)
    # the same answer as a regulator's
    assert w.send(w.reg, "GET", f"/fhir/$audit-proof?index={mine}&size={got['size']['valueInteger']}").get_json() \
        == r.get_json()
    # someone else's entry, an entry past the end: refused alike
    theirs = next(index[i] for i in about_p2 if i in index)
    for url in (f"/fhir/$audit-proof?index={theirs}", f"/fhir/$audit-proof?index={len(index) + 5}"):
        refused = w.send(w.p1_token, "GET", url)
        assert refused.status_code == 403, refused.get_data(as_text=True)
        assert refused.get_json()["resourceType"] == "OperationOutcome"
    assert w.send(w.p2_token, "GET", f"/fhir/$audit-proof?index={theirs}").status_code == 200
    assert w.send(w.p2_token, "GET", f"/fhir/$audit-proof?index={mine}").status_code == 403
    # the other endpoints stay with regulators and administrators; hospitals get no proofs
    for url in ("/fhir/$audit-entries?start=0", "/fhir/$audit-consistency?from=1", "/fhir/$audit-checkpoint"):
        assert w.send(w.p1_token, "GET", url).status_code == 403
    assert w.send(w.dra, "GET", f"/fhir/$audit-proof?index={mine}").status_code == 403
    assert w.send(w.reg_client, "GET", f"/fhir/$audit-proof?index={theirs}").status_code == 200
