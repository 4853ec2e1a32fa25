"""Regulators (docs/governance.md), on both stores: a regulator user or a backend client registered as
a regulator reads AuditEvent, Provenance and Consent across the exchange, whichever hospital holds
them, and no clinical content: a type inside its scopes but outside the policy is an empty search and
a 404 read; a type outside its scopes is 403 (SMART); it writes nothing.
"""
from __future__ import annotations

import pytest

from fhirserver.governance import custodian
from fhirserver.interactions.common import new_id, prepare, store_new_version
from fhirserver.search.extract import extract
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.clients import Clients
from tests.conftest import STORES
from tests.governance.test_policy import A, World, obs
from tests.smart_auth._tokens import mint

PW = "correct horse battery"


class Oversight(World):
    def __init__(self, tmp_path, backend):
        super().__init__(tmp_path, backend)
        store = self.app.config["MEDPORT"].store
        Users(store).add("inspector", PW, "regulator")
        self.reg = mint(self.app, "user/*.rs", subject="inspector", role="regulator")
        self.narrow = mint(self.app, "user/AuditEvent.rs user/Consent.rs", subject="inspector", role="regulator")
        client, _secret = Clients(store).add("Health regulator", "confidential-symmetric",
                                             ["https://regulator.test/cb"], ["system/*.rs"], regulator=True)
        self.backend = mint(self.app, "system/*.rs", subject=client.client_id, client_id=client.client_id)
        self.consent_id = self.create(self.p1_token, self.consent())
        self.provenance = self.server_writes(store, {
            "resourceType": "Provenance", "target": [{"reference": f"Observation/{self.obs1}"}],
            "recorded": "2026-01-02T03:04:05Z", "agent": [{"who": {"reference": A}}]})
        r = self.send(self.p1_token, "POST", f"/fhir/Patient/{self.p1}/$revoke-health-cards", None)
        assert r.status_code == 200, r.get_data(as_text=True)       # an AuditEvent written by the server


    def server_writes(self, store, resource) -> str:
        """A Provenance as the server writes it (clients cannot), held by hospital A."""
        ctx = self.app.config["MEDPORT"]
        prepared = prepare(ctx, resource["resourceType"], resource)
        custodian.stamp(prepared.resource, A)
        prepared.rows = extract(prepared.resource, ctx.base)
        id = new_id()
        with store.unit() as tx:
            store_new_version(tx, prepared, id, "POST", None)
        return id


@pytest.fixture(params=STORES)
def o(request, tmp_path):
    return Oversight(tmp_path, request.param)


def test_a_regulator_reads_audit_provenance_and_consent_but_no_care(o):
    for token in (o.reg, o.backend):
        assert o.ids(token, "AuditEvent")[0] >= 1
        assert o.provenance in o.ids(token, "Provenance")[1]
        assert o.ids(token, "Consent") == (1, {o.consent_id})
        assert o.send(token, "GET", f"/fhir/Consent/{o.consent_id}").status_code == 200
        # inside the scopes, outside the policy: empty and 404, never the content
        assert o.ids(token, "Observation") == (0, set())
        assert o.ids(token, "Patient") == (0, set())
        assert o.ids(token, "Organization") == (0, set())
        assert o.send(token, "GET", f"/fhir/Observation/{o.obs1}").status_code == 404
        assert o.send(token, "GET", f"/fhir/Patient/{o.p1}/Observation").get_json().get("total") == 0
        body = o.send(token, "GET", "/fhir/Provenance?_include=Provenance:target&_count=100").get_json()
        assert {e["resource"]["resourceType"] for e in body["entry"]} <= {"Provenance", "Consent"}   # no care
        assert o.ids(token, "Consent?patient.name=Rao") == (0, set())    # chains reach no Patient either


def test_a_type_outside_the_regulators_scopes_is_403(o):
    assert o.ids(o.narrow, "Consent")[0] == 1
    assert o.send(o.narrow, "GET", "/fhir/Observation").status_code == 403
    assert o.send(o.narrow, "GET", "/fhir/Provenance").status_code == 403


def test_a_regulator_writes_nothing(o):
    writer = mint(o.app, "user/*.cruds", subject="inspector", role="regulator")
    assert o.send(writer, "POST", "/fhir/Observation", obs(o.p1, "forged")).status_code == 403
    consent = o.send(writer, "GET", f"/fhir/Consent/{o.consent_id}").get_json()
    assert o.send(writer, "PUT", f"/fhir/Consent/{o.consent_id}", {**consent, "status": "inactive"}).status_code == 403
    assert o.send(writer, "DELETE", f"/fhir/Consent/{o.consent_id}").status_code == 403


def test_a_regulators_client_belongs_to_no_hospital(o):
    with pytest.raises(ValueError):
        Clients(o.app.config["MEDPORT"].store).add("x", "confidential-symmetric", ["https://x.test/cb"],
                                                   ["system/*.rs"], organization=A, regulator=True)
