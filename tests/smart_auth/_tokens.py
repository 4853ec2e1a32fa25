"""Shared by the access control tests over HTTP (test_leaks.py, test_enforcement.py): a server with
authorization on, access tokens minted directly with the server's signing keys, and two patients'
records (asha and ravi) seeded by the server itself (no Provenance), except each patient's lab
Observation, written over HTTP with a system/*.cruds token and an X-Provenance header: its Provenance,
the server's (governance/provenance.py), is the one Provenance each patient has.

Everything of ravi's carries the marker RAVI-PRIVATE (and his names, identifiers and ids), so that a
response can be searched for any trace of his records.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field

from fhirserver import create_app
from fhirserver.interactions.binary_content import externalize_data
from fhirserver.interactions.common import new_id, prepare, store_new_version
from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.keys import SigningKeys
from tests.conftest import FHIR_JSON, make_settings

BASE = "http://fhir.test/fhir"
MRN = "http://hospital.test/mrn"
LAB_IDS = "http://lab.test/observation"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
RAVI_MARK = "RAVI-PRIVATE"
BIRTH_DATE = "1950-04-02"            # both patients share it (a criterion matching both)

# identity of each patient: id, names, MRN
PEOPLE = {
    "asha": {"family": "Sharma", "given": "Asha", "mrn": "MRN-ASHA-001", "mark": "ASHA-OWN"},
    "ravi": {"family": "Kumar", "given": "Ravi", "mrn": "MRN-RAVI-002", "mark": RAVI_MARK},
}
LAB_CODE = {"asha": ("718-7", "Hemoglobin"), "ravi": ("2345-7", "Glucose")}
VITAL_CODE = ("8867-4", "Heart rate")
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def make_app(tmp_path, backend: str = "sqlite", **settings):
    return create_app(make_settings(tmp_path, backend, auth="on", **settings))


def mint(app, scope: str, subject: str = "user-1", client_id: str = "app", lifetime_s: int = 3600, **context) -> str:
    """An access token signed with the server's own keys."""
    keys = SigningKeys(app.config["MEDPORT"].store)
    token, _claims = tokens.issue(keys, BASE, BASE, subject, client_id, scope, lifetime_s=lifetime_s, **context)
    return token


def auth(token: str, **headers) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}


def ref(key: str) -> dict:
    return {"reference": key}


def coding(system: str, code: str, display: str | None = None) -> dict:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c], "text": display or code}


@dataclass
class Seeded:
    """What was stored: 'Type/id' keys by owner and by role."""
    owner: dict = field(default_factory=dict)     # "Type/id" -> "asha" | "ravi" | "shared"
    named: dict = field(default_factory=dict)     # role name -> "Type/id", e.g. "ravi.lab"
    fingerprints: dict = field(default_factory=dict)   # owner -> strings only that owner's records hold

    def of(self, who: str, rtype: str | None = None) -> set[str]:
        return {k for k, o in self.owner.items() if o == who and (rtype is None or k.split("/")[0] == rtype)}

    def id(self, role: str) -> str:
        return self.named[role].split("/", 1)[1]


class Seeder:
    """Stores resources with a token over HTTP (each write gets its Provenance), or, direct=True, as the
    server's own writes through the same write path (validation, custodian, UHID, Binary data in the
    blob store) but without Provenance, and remembers who owns them. post_with_provenance writes over
    HTTP with an X-Provenance header and remembers the Provenance the server wrote."""

    def __init__(self, client, headers: dict, direct: bool = False):
        self.client = client
        self.headers = headers
        self.direct = direct
        self.ctx = client.application.config["MEDPORT"]
        self.seeded = Seeded()

    def _store(self, resource: dict, id: str) -> None:
        blob = externalize_data(self.ctx, resource) if resource["resourceType"] == "Binary" else None
        prepared = prepare(self.ctx, resource["resourceType"], {**resource, "id": id}, blob)
        with self.ctx.store.transaction() as tx:
            store_new_version(tx, prepared, id, "PUT", tx.read(resource["resourceType"], id))

    def put(self, role: str, owner: str, resource: dict) -> str:
        key = f"{resource['resourceType']}/{resource['id']}"
        if self.direct:
            self._store(dict(resource), resource["id"])
            return self._remember(role, owner, key)
        r = self.client.put(f"/fhir/{key}", json=resource, headers={**self.headers, "Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.get_data(as_text=True)     # a fresh store: update as create
        return self._remember(role, owner, key)

    def post(self, role: str, owner: str, resource: dict) -> str:
        if self.direct:
            id = new_id()
            self._store(dict(resource), id)
            return self._remember(role, owner, f"{resource['resourceType']}/{id}")
        r = self.client.post(f"/fhir/{resource['resourceType']}", json=resource,
                             headers={**self.headers, "Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.get_data(as_text=True)
        return self._remember(role, owner, f"{resource['resourceType']}/{r.get_json()['id']}")

    def post_with_provenance(self, role: str, owner: str, resource: dict, provenance_role: str,
                             provenance: dict) -> str:
        r = self.client.post(f"/fhir/{resource['resourceType']}", json=resource,
                             headers={**self.headers, "Content-Type": FHIR_JSON, "X-Provenance": json.dumps(provenance)})
        assert r.status_code == 201, r.get_data(as_text=True)
        key = self._remember(role, owner, f"{resource['resourceType']}/{r.get_json()['id']}")
        found = self.client.get(f"/fhir/Provenance?target={key}", headers=self.headers).get_json()
        assert found["total"] == 1, found
        self._remember(provenance_role, owner, f"Provenance/{found['entry'][0]['resource']['id']}")
        return key

    def _remember(self, role: str, owner: str, key: str) -> str:
        self.seeded.owner[key] = owner
        self.seeded.named[role] = key
        return key


def seed(client, system_token: str) -> Seeded:
    """Two patients, each with Observations (laboratory, vital-signs), an Encounter, a Condition, a
    MedicationRequest, a DiagnosticReport (result -> the lab Observation), a Provenance (the server's,
    of the lab Observation: targets the lab Observation and Patient), a
    RelatedPerson, a message thread (a Communication header and one message partOf it) and a Binary; an Organization and a Practitioner referenced by both. Edge cases:
    ravi's 'linked' Observation has focus Patient/asha and is derived from asha's vital signs; asha's
    'derived' Observation is derived from ravi's lab Observation."""
    s = Seeder(client, auth(system_token), direct=True)     # each patient's one Provenance: post_with_provenance
    s.put("org", "shared", {"resourceType": "Organization", "id": "org-city", "name": "City Hospital"})
    s.put("prac", "shared", {"resourceType": "Practitioner", "id": "prac-1",
                             "name": [{"family": "Iyer", "given": ["Meera"]}]})
    for who, p in PEOPLE.items():
        mark = p["mark"]
        pat = s.put(f"{who}.patient", who, {
            "resourceType": "Patient", "id": who, "identifier": [{"system": MRN, "value": p["mrn"]}],
            "name": [{"family": p["family"], "given": [p["given"]]}], "birthDate": BIRTH_DATE,
            "managingOrganization": ref("Organization/org-city"),
            "generalPractitioner": [ref("Practitioner/prac-1")]})
        enc = s.post(f"{who}.encounter", who, {
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": ref(pat), "serviceProvider": ref("Organization/org-city"),
            "participant": [{"individual": ref("Practitioner/prac-1")}],
            "reasonCode": [{"text": f"{mark} check-up"}]})
        lab = s.post_with_provenance(f"{who}.lab", who, {
            "resourceType": "Observation", "status": "final",
            "identifier": [{"system": LAB_IDS, "value": f"LAB-{who.upper()}-1"}],
            "category": [coding(CATEGORY, "laboratory", "Laboratory")],
            "code": coding(LOINC, *LAB_CODE[who]), "subject": ref(pat), "encounter": ref(enc),
            "performer": [ref("Practitioner/prac-1")],
            "valueQuantity": {"value": 13.5 if who == "asha" else 182, "unit": "g/dL" if who == "asha" else "mg/dL"},
            "note": [{"text": f"{mark} lab result"}]}, f"{who}.provenance", {
            "resourceType": "Provenance", "agent": [{"type": coding(PARTICIPANT, "verifier"), "who": ref("Practitioner/prac-1")}],
            "reason": [{"text": f"{mark} provenance"}]})
        s.post(f"{who}.vital", who, {
            "resourceType": "Observation", "status": "final",
            "category": [coding(CATEGORY, "vital-signs", "Vital Signs")],
            "code": coding(LOINC, *VITAL_CODE), "subject": ref(pat), "encounter": ref(enc),
            "valueQuantity": {"value": 72 if who == "asha" else 96, "unit": "/min"},
            "note": [{"text": f"{mark} vital signs"}]})
        s.post(f"{who}.condition", who, {
            "resourceType": "Condition", "subject": ref(pat), "encounter": ref(enc),
            "asserter": ref("Practitioner/prac-1"), "code": {"text": "Hypertension"},
            "note": [{"text": f"{mark} condition"}]})
        s.post(f"{who}.medreq", who, {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "Amlodipine 5 mg"}, "subject": ref(pat),
            "requester": ref("Practitioner/prac-1"), "note": [{"text": f"{mark} prescription"}]})
        s.post(f"{who}.report", who, {
            "resourceType": "DiagnosticReport", "status": "final", "code": coding(LOINC, "58410-2", "CBC panel"),
            "subject": ref(pat), "encounter": ref(enc), "performer": [ref("Organization/org-city")],
            "result": [ref(lab)], "conclusion": f"{mark} report"})
        s.post(f"{who}.related", who, {
            "resourceType": "RelatedPerson", "patient": ref(pat),
            "name": [{"family": p["family"], "given": [f"{mark} relative"]}]})
        thread = s.post(f"{who}.thread", who, {         # a doctor's thread with the patient (docs/messages.md)
            "resourceType": "Communication", "status": "in-progress", "subject": ref(pat),
            "sender": ref("Practitioner/prac-1"), "recipient": [ref(pat)], "topic": {"text": f"{mark} thread"}})
        s.post(f"{who}.message", who, {
            "resourceType": "Communication", "status": "in-progress", "partOf": [ref(thread)], "subject": ref(pat),
            "sender": ref("Practitioner/prac-1"), "recipient": [ref(pat)], "sent": "2024-05-01T10:00:00Z",
            "payload": [{"contentString": f"{mark} message"}]})
        s.post(f"{who}.binary", who, {
            "resourceType": "Binary", "contentType": "text/plain", "securityContext": ref(pat),
            "data": base64.b64encode(f"{mark} scanned letter".encode()).decode()})
    # edge cases across the two compartments (references that are not compartment-defining)
    s.post("ravi.linked", "ravi", {
        "resourceType": "Observation", "status": "final", "code": coding(LOINC, "10157-6", "Family history"),
        "subject": ref("Patient/ravi"), "focus": [ref("Patient/asha")],
        "derivedFrom": [ref(s.seeded.named["asha.vital"])], "note": [{"text": f"{RAVI_MARK} about his sister"}]})
    s.post("asha.derived", "asha", {
        "resourceType": "Observation", "status": "final", "code": coding(LOINC, "55284-4", "Blood pressure"),
        "subject": ref("Patient/asha"), "derivedFrom": [ref(s.seeded.named["ravi.lab"])],
        "note": [{"text": "ASHA-OWN derived"}]})
    for who, p in PEOPLE.items():
        s.seeded.fingerprints[who] = {p["mark"], p["family"], p["mrn"], f"LAB-{who.upper()}-1", f"Patient/{who}"}
        stored = client.get(f"/fhir/Patient/{who}", headers=auth(system_token)).get_json()
        uhid = [i["value"] for i in stored["identifier"] if i["system"].endswith("/sid/uhid")]    # issued on create
        s.seeded.fingerprints[who] |= set(uhid) | {u.replace("-", "") for u in uhid}
    return s.seeded


class Template:
    """A seeded server, made once and copied for each test (SQLite: a backup and the blob files;
    MongoDB: every collection): every test starts from the same records and may change them freely."""

    def __init__(self, directory, backend: str = "sqlite", **settings):
        self.directory, self.backend, self.settings = directory, backend, settings
        self.app = make_app(directory, backend, **settings)
        self.seeded = self.seed(self.app)

    def seed(self, app):
        """What every copy starts from (a subclass seeds its own world)."""
        return seed(app.test_client(), mint(app, "system/*.cruds"))

    def copy(self, target):
        if self.backend != "sqlite":
            source = self.app.config["MEDPORT"].store.db
            app = make_app(target, self.backend, **self.settings)
            dest = app.config["MEDPORT"].store.db
            for name in source.list_collection_names():
                docs = list(source[name].find())
                dest[name].delete_many({})
                if docs:
                    dest[name].insert_many(docs)
            return app
        source = sqlite3.connect(os.path.join(self.directory, "medport.db"))
        dest = sqlite3.connect(os.path.join(target, "medport.db"))
        with dest:
            source.backup(dest)
        source.close()
        dest.close()
        shutil.copytree(os.path.join(self.directory, "blobs"), os.path.join(target, "blobs"))
        return make_app(target, **self.settings)
