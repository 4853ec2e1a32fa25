"""UHIDs for tests that write the same Patient more than once: a UHID is permanent, so every
version must carry it (fhirserver/uhid/patient_rules.py)."""
from __future__ import annotations

import hashlib

from fhirserver.uhid import number, verhoeff

TEST_SYSTEM = "http://fhir.test/fhir/sid/uhid"     # the UHID system of tests.conftest.make_settings


def uhid_for(key: str) -> str:
    """A valid UHID that is always the same for the same key."""
    body = str(10 ** 12 + int(hashlib.sha256(key.encode()).hexdigest(), 16) % (9 * 10 ** 12))
    return number.format_digits(body + verhoeff.check_digit(body))


def uhid_in(resource: dict, system: str = TEST_SYSTEM) -> str:
    """The one UHID a stored Patient carries."""
    [value] = [i["value"] for i in resource["identifier"] if i["system"] == system]
    return value


def uhid_identifier(key: str, system: str = TEST_SYSTEM) -> dict:
    return {"system": system, "value": uhid_for(key)}


def with_uhid(resource: dict, key: str, system: str = TEST_SYSTEM) -> dict:
    return {**resource, "identifier": [uhid_identifier(key, system)] + list(resource.get("identifier") or [])}


def without_uhid(resource: dict, system: str = TEST_SYSTEM) -> dict:
    """The resource as the client sent it: the UHID identifier the server added taken out."""
    if resource.get("resourceType") != "Patient":
        return resource
    ids = [i for i in resource.get("identifier") or () if i.get("system") != system]
    out = {k: v for k, v in resource.items() if k != "identifier"}
    return {**out, "identifier": ids} if ids else out
