"""A patient invites a family member (Patient/[id]/$invite-family, POST /api/registrations/family;
governance/family_invite.py), on both stores: the patient names her RelatedPerson and his phone; the
delegation becomes live and an invitation code reaches him through the outbox; he redeems it once for a
related-person account that acts for her; nobody but the patient can invite; a code works once."""
from __future__ import annotations

import json
import re

import pytest

from fhirserver import outbox
from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON, STORES
from tests.smart_auth._tokens import BASE, auth, make_app, mint


class World:
    def __init__(self, tmp_path, backend):
        self.app = make_app(tmp_path, backend)
        self.client = self.app.test_client()
        self.store = self.app.config["MEDPORT"].store
        self.exchange = mint(self.app, "system/*.cruds", client_id="exchange-tool")
        self.mother = self.create(self.exchange, {"resourceType": "Patient", "name": [{"given": ["Kamala"],
                                                                                      "family": "Rao"}]})
        self.other = self.create(self.exchange, {"resourceType": "Patient", "name": [{"family": "Other"}]})
        Users(self.store).add("kamala", "correct horse battery", "patient", f"Patient/{self.mother}")
        self.mother_token = mint(self.app, "patient/*.cruds", subject="kamala", patient=self.mother, role="patient",
                                 fhirUser=f"{BASE}/Patient/{self.mother}")
        self.son = self.create(self.mother_token, {
            "resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{self.mother}"},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                          "code": "SON"}]}], "name": [{"given": ["Arjun"], "family": "Rao"}]})
        self.create(self.exchange, {"resourceType": "Observation", "status": "final", "code": {"text": "BP"},
                                    "subject": {"reference": f"Patient/{self.mother}"}})

    def send(self, token, method, url, body=None):
        return self.client.open(url, method=method, data=None if body is None else json.dumps(body),
                                headers={**(auth(token) if token else {}), "Content-Type": FHIR_JSON})

    def create(self, token, resource) -> str:
        r = self.send(token, "POST", f"/fhir/{resource['resourceType']}", resource)
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()["id"]

    def invite(self, token, patient=None, related=None, contact="+91 98450 12345"):
        body = {"resourceType": "Parameters", "parameter": [
            {"name": "relatedPerson", "valueReference": {"reference": f"RelatedPerson/{related or self.son}"}},
            {"name": "contact", "valueString": contact}]}
        return self.send(token, "POST", f"/fhir/Patient/{patient or self.mother}/$invite-family", body)

    def code(self, to: str) -> str:
        sent = [m for _k, m in outbox.messages(self.store) if m["to"] == to]
        return re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", sent[-1]["body"]).group(0)

    def redeem(self, code, password="another long password"):
        return self.client.post("/api/registrations/family", json={"code": code, "password": password})


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return World(tmp_path, request.param)


def test_the_patient_invites_her_son_and_he_acts_for_her(w):
    r = w.invite(w.mother_token)
    assert r.status_code == 200, r.get_data(as_text=True)
    consent = next(p for p in r.get_json()["parameter"] if p["name"] == "consent")["valueReference"]["reference"]
    assert w.send(w.mother_token, "GET", f"/fhir/{consent}").get_json()["status"] == "active"
    code = w.code("+91 98450 12345")
    done = w.redeem(code)
    assert done.status_code == 201, done.get_data(as_text=True)
    username = done.get_json()["username"]
    user = Users(w.store).get(username)
    assert user.role == "related-person" and user.fhir_user == f"RelatedPerson/{w.son}"
    son = mint(w.app, "user/*.cruds", subject=username, role="related-person", patient=w.mother,
               fhirUser=f"{BASE}/RelatedPerson/{w.son}")
    assert w.send(son, "GET", "/fhir/Observation").get_json()["total"] == 1
    assert w.send(son, "GET", f"/fhir/Patient/{w.other}").status_code == 404
    assert w.redeem(code).status_code == 404                       # once
    # a second invitation reuses the live delegation
    again = w.invite(w.mother_token, contact="arjun@example.org")
    assert next(p for p in again.get_json()["parameter"] if p["name"] == "consent")["valueReference"]["reference"] \
        == consent


def test_only_the_patient_invites(w):
    assert w.invite(w.exchange).status_code == 403                 # a hospital system does not decide it
    other_user = Users(w.store)
    other_user.add("other", "correct horse battery", "patient", f"Patient/{w.other}")
    other = mint(w.app, "patient/*.cruds", subject="other", patient=w.other, role="patient",
                 fhirUser=f"{BASE}/Patient/{w.other}")
    assert w.invite(other, patient=w.mother).status_code in (403, 404)     # not hers to see or decide
    assert not outbox.messages(w.store)


def test_bad_invitations_and_codes(w):
    assert w.invite(w.mother_token, contact="not a contact").status_code == 400
    foreign = w.create(w.exchange, {"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{w.other}"}})
    assert w.invite(w.mother_token, related=foreign).status_code == 404
    assert w.redeem("AAAA-BBBB-CCCC").status_code == 404
    assert w.client.post("/api/registrations/family", json={"code": 1}).status_code == 400
    assert not outbox.messages(w.store)
