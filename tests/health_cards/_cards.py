"""Shared by the health card tests: an in-memory store, a patient with an immunization, and a
card signed with the issuer's active key."""
from __future__ import annotations

import time

from fhirserver.health_cards import credential, jws
from fhirserver.health_cards.issuer_keys import IssuerKeys

ISSUER = "https://hospital.test/fhir"
CVX = "http://hl7.org/fhir/sid/cvx"
UHID = "https://hospital.test/uhid"


class FakeStore:
    """The record part of the store API, in memory (expiry ignored: issuer keys never expire)."""

    def __init__(self):
        self.records: dict[tuple[str, str], dict] = {}

    def put_record(self, kind, key, value, expires_at=None):
        self.records[kind, key] = value

    def add_record(self, kind, key, value, expires_at=None):
        if (kind, key) in self.records:
            return False
        self.records[kind, key] = value
        return True

    def get_record(self, kind, key):
        return self.records.get((kind, key))

    def list_records(self, kind):
        return sorted((k, v) for (c, k), v in self.records.items() if c == kind)


def patient() -> dict:
    return {
        "resourceType": "Patient", "id": "asha",
        "meta": {"versionId": "3", "lastUpdated": "2024-05-01T10:00:00Z"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Asha Rao</div>"},
        "identifier": [{"system": UHID, "value": "1234567897"}],
        "name": [{"family": "Rao", "given": ["Asha"]}],
        "birthDate": "1950-04-02",
    }


def immunization(n: int = 1) -> dict:
    return {
        "resourceType": "Immunization", "id": f"imm-{n}", "status": "completed",
        "vaccineCode": {"coding": [{"system": CVX, "code": "207", "display": "COVID-19, mRNA"}],
                        "text": "Moderna COVID-19 vaccine"},
        "patient": {"reference": "http://hospital.test/fhir/Patient/asha"},
        "occurrenceDateTime": f"2021-0{n}-01",
        "performer": [{"actor": {"reference": "Organization/clinic", "display": "City Clinic"}}],
        "lotNumber": f"LOT{n}",
    }


def card_payload(nbf: float | None = None, issuer: str = ISSUER) -> dict:
    bundle = credential.minimal_bundle(patient(), [immunization(1), immunization(2)])
    return credential.payload(issuer, bundle, int(time.time() if nbf is None else nbf))


def issue(keys: IssuerKeys, **kw) -> str:
    return jws.sign(card_payload(**kw), keys.active())


def keys_for(keys: IssuerKeys, issuer: str = ISSUER):
    """keys_for() as a verifier has it: the JWKS of our one issuer, None for any other."""
    return lambda iss: keys.jwks() if iss == issuer else None
