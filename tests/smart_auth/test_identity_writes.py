"""A patient's token (or their family proxy's) keeps the identifiers of their Patient record as the
hospitals and the UHID registry assigned them (docs/security.md, Writes). Otherwise a patient takes
another person's MRN at their hospital into their own record (which that hospital holds), the
hospital's next write keyed by that MRN (a conditional reference `Patient?identifier=...`, as EHR
feeds and Synthea-style transactions make) files that person's result into the patient's chart, and
the patient reads it. Demographics the patient may correct (telecom, address) stay writable. On both
stores.
"""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.accounts import Users
from fhirserver.storage.base import Write
from tests.scheduling._world import PASSWORD, World, issue
from tests.smart_auth._tokens import BASE, mint

MRN = "http://hosp-a.test/mrn"


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend, default_custodian="Organization/hosp-a")     # A holds asha's record
    me = w.send(w.system, "GET", f"/fhir/Patient/{w.asha}").get_json()
    me["identifier"].append({"system": MRN, "value": "A-100"})
    assert w.send(w.system, "PUT", f"/fhir/Patient/{w.asha}", me).status_code == 200
    return w


def mine(w: World, token) -> dict:
    r = w.send(token, "GET", f"/fhir/Patient/{w.asha}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_a_patient_cannot_take_another_persons_mrn_and_so_their_results(world):
    w = world
    me = mine(w, w.asha_token)
    me["identifier"].append({"system": MRN, "value": "A-200"})        # another person's MRN at A
    r = w.send(w.asha_token, "PUT", f"/fhir/Patient/{w.asha}", me)
    assert r.status_code == 403, r.get_data(as_text=True)
    assert "identifier" in issue(r)
    # A's feed files the other person's result by MRN: it does not land in asha's chart
    result = {"resourceType": "Observation", "status": "final", "code": {"text": "glucose of A-200"},
              "subject": {"reference": f"Patient?identifier={MRN}|A-200"}}
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": result, "request": {"method": "POST", "url": "Observation"}}]}
    w.send(w.a, "POST", "/fhir", bundle)
    found = w.send(w.asha_token, "GET", "/fhir/Observation").get_json()
    assert "glucose of A-200" not in str(found)


@pytest.mark.parametrize("who", ["patient", "proxy"])
@pytest.mark.parametrize("how", ["add", "change value", "change system", "patch add", "patch replace"])
def test_no_identifier_is_added_or_changed_by_the_patient_or_proxy(world, who, how):
    w = world
    token = w.asha_token if who == "patient" else w.son_token
    me = mine(w, token)
    at = next(i for i, x in enumerate(me["identifier"]) if x["system"] == MRN)
    patch = None
    if how == "add":
        me["identifier"].append({"system": "http://other.test/id", "value": "X-1"})
    elif how == "change value":
        me["identifier"][at]["value"] = "A-200"
    elif how == "change system":
        me["identifier"][at]["system"] = "http://hosp-b.test/mrn"
    elif how == "patch add":
        patch = [{"op": "add", "path": "/identifier/-", "value": {"system": MRN, "value": "A-200"}}]
    else:
        patch = [{"op": "replace", "path": f"/identifier/{at}/value", "value": "A-200"}]
    if patch is None:
        r = w.send(token, "PUT", f"/fhir/Patient/{w.asha}", me)
    else:
        r = w.http.patch(f"/fhir/Patient/{w.asha}", json=patch, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json-patch+json"})
    assert r.status_code == 403, r.get_data(as_text=True)
    assert [x for x in mine(w, w.system)["identifier"] if x["system"] == MRN] == [{"system": MRN, "value": "A-100"}]


def test_the_patient_still_corrects_their_contact_details_and_may_drop_an_identifier(world):
    w = world
    me = mine(w, w.asha_token)
    me["telecom"] = [{"system": "phone", "value": "+91 98450 00000"}]
    at = next(i for i, x in enumerate(me["identifier"]) if x["system"] == MRN)
    me["identifier"][at]["use"] = "old"                      # the same identifier, described otherwise
    r = w.send(w.asha_token, "PUT", f"/fhir/Patient/{w.asha}", me)
    assert r.status_code == 200, r.get_data(as_text=True)
    me = r.get_json()
    me["identifier"] = [x for x in me["identifier"] if x["system"] != MRN]
    assert w.send(w.asha_token, "PUT", f"/fhir/Patient/{w.asha}", me).status_code == 200
    # hospitals still add the identifiers they assign
    staff = mint(w.app, "system/*.cruds", client_id="registry")
    me = mine(w, staff)
    me["identifier"].append({"system": MRN, "value": "A-300"})
    assert w.send(staff, "PUT", f"/fhir/Patient/{w.asha}", me).status_code == 200


def test_a_record_stored_before_uhids_still_takes_the_patients_corrections(world):
    """The UHID the server draws for such a record on its next write is the registry's, not one the patient
    added (its own rules, uhid/patient_rules.py, keep it permanent and unique)."""
    w = world
    with w.ctx.store.transaction() as tx:
        tx.write(Write("Patient", "legacy", 1, "2020-01-01T00:00:00.000000Z", "PUT",
                       b'{"resourceType":"Patient","id":"legacy","meta":{"versionId":"1"}}'))
    Users(w.ctx.store).add("legacy-user", PASSWORD, "patient", "Patient/legacy")
    token = mint(w.app, "patient/*.cruds", subject="legacy-user", role="patient", fhirUser=f"{BASE}/Patient/legacy",
                 patient="legacy")
    me = {"resourceType": "Patient", "id": "legacy", "telecom": [{"system": "phone", "value": "+91 98450 00001"}]}
    r = w.send(token, "PUT", "/fhir/Patient/legacy", me)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [i for i in r.get_json()["identifier"] if i["system"] == w.ctx.uhid_system]
    me = {**r.get_json(), "identifier": r.get_json()["identifier"] + [{"system": MRN, "value": "A-200"}]}
    assert w.send(token, "PUT", "/fhir/Patient/legacy", me).status_code == 403
