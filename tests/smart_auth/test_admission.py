"""Write admission (fhirserver/smart_auth/admission.py), generated over every resource type of the
Patient compartment and every reference parameter that puts a resource in it: a patient-confined
write naming another patient anywhere is refused, whichever path names them, even when another path
puts the resource in the caller's compartment (the read rule, "any compartment parameter", let
those through). The HTTP paths (create, update, patch, delete, bundles) are in test_write_rules.py.
"""
from __future__ import annotations

import re

import pytest

from fhirserver.errors import Forbidden
from fhirserver.search.compartment import members
from fhirserver.search.registry import lookup
from fhirserver.smart_auth.access import Access
from fhirserver.smart_auth.admission import SERVER_WRITTEN, patient_references
from fhirserver.smart_auth.scopes import Grants

BASE = "http://fhir.test/fhir"
OWN, OTHER = "asha", "ravi"


def element_path(rtype: str, code: str) -> list[str] | None:
    """The element path that a compartment parameter reads for rtype (its FHIRPath, simplified)."""
    param = lookup(rtype, code)
    if param is None or param.kind != "reference" or not param.expression:
        return None
    for part in param.expression.split("|"):
        part = re.sub(r"\.where\((?:[^()]|\([^()]*\))*\)", "", part.strip())
        part = re.sub(r"\s+as\s+\w+$", "", part).strip("() ")
        if part.startswith(rtype + ".") and re.fullmatch(r"[A-Za-z.]+", part):
            return part.split(".")[1:]
    return None


def set_path(resource: dict, path: list[str], value: dict) -> None:
    node = resource
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value


def ref(patient: str) -> dict:
    return {"reference": f"Patient/{patient}"}


CASES = [(rtype, code) for rtype, codes in sorted(members("Patient").items()) for code in codes
         if code != "{def}" and element_path(rtype, code) is not None]
PATIENT_SCOPED = Access(Grants.parse("patient/*.cruds"), OWN, {"role": "patient", "fhirUser": f"Patient/{OWN}"})


def test_every_compartment_type_has_a_generated_case():
    covered = {rtype for rtype, _ in CASES}
    missing = set(members("Patient")) - covered - {"Patient"}
    assert not missing, f"no buildable reference path for {sorted(missing)}"
    assert len(CASES) > 100


def _with_other(rtype: str, code: str) -> dict:
    """A resource naming OTHER through `code`, and OWN through every other compartment path."""
    resource = {"resourceType": rtype, "id": "x1"}
    for other_code in members("Patient")[rtype]:
        path = element_path(rtype, other_code) if other_code != code else None
        if path and path != element_path(rtype, code):
            set_path(resource, path, ref(OWN))
    set_path(resource, element_path(rtype, code), ref(OTHER))
    return resource


@pytest.mark.parametrize("rtype,code", CASES, ids=[f"{t}.{c}" for t, c in CASES])
def test_naming_another_patient_through_any_path_is_refused(rtype, code):
    resource = _with_other(rtype, code)
    for interaction in ("create", "update", "patch"):
        with pytest.raises(Forbidden):
            PATIENT_SCOPED.admit_write(interaction, resource, BASE)


@pytest.mark.parametrize("rtype,code", CASES, ids=[f"{t}.{c}" for t, c in CASES])
def test_a_record_about_the_patient_alone_is_admitted(rtype, code):
    if rtype in SERVER_WRITTEN or rtype == "Patient":
        return
    resource = {"resourceType": rtype, "id": "x1"}
    set_path(resource, element_path(rtype, code), ref(OWN))
    PATIENT_SCOPED.admit_write("create", resource, BASE)


@pytest.mark.parametrize("rtype,code", CASES, ids=[f"{t}.{c}" for t, c in CASES])
def test_replacing_a_record_about_another_patient_is_refused(rtype, code):
    """An update that makes a record the caller's own must not take it from the other patient."""
    if rtype in SERVER_WRITTEN or rtype == "Patient":
        return
    import json
    mine = {"resourceType": rtype, "id": "x1"}
    set_path(mine, element_path(rtype, code), ref(OWN))
    theirs = json.dumps(_with_other(rtype, code)).encode()
    with pytest.raises(Forbidden):
        PATIENT_SCOPED.admit_write("update", mine, BASE, theirs)
    with pytest.raises(Forbidden):
        PATIENT_SCOPED.admit_write("delete", {"resourceType": rtype, "id": "x1"}, BASE, theirs)


@pytest.mark.parametrize("form", [
    {"reference": f"{BASE}/Patient/{OTHER}"},
    {"reference": f"Patient/{OTHER}/_history/1"},
    {"reference": "https://elsewhere.example/fhir/Patient/p9"},
    {"type": "Patient", "identifier": {"system": "urn:x", "value": "12"}},
    {"reference": "Patient?identifier=urn:x|12"},
])
def test_every_form_of_naming_another_person_is_refused(form):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": ref(OWN),
           "extension": [{"url": "urn:x", "valueReference": form}]}
    with pytest.raises(Forbidden):
        PATIENT_SCOPED.admit_write("create", obs, BASE)


def test_a_contained_patient_is_refused():
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": ref(OWN),
           "contained": [{"resourceType": "Patient", "id": "p", "name": [{"family": "Forged"}]}],
           "performer": [{"reference": "#p"}]}
    with pytest.raises(Forbidden):
        PATIENT_SCOPED.admit_write("create", obs, BASE)


def test_patients_update_only_their_own_patient_record():
    own = {"resourceType": "Patient", "id": OWN, "telecom": [{"system": "phone", "value": "+91 98"}]}
    PATIENT_SCOPED.admit_write("update", own, BASE, b'{"resourceType":"Patient","id":"asha"}')
    for interaction, resource in (("create", {"resourceType": "Patient", "id": "new1", "link": [{"other": ref(OWN)}]}),
                                  ("create", {"resourceType": "Patient", "id": OWN}),
                                  ("update", {"resourceType": "Patient", "id": OTHER}),
                                  ("update", {**own, "link": [{"other": ref(OTHER), "type": "seealso"}]})):
        with pytest.raises(Forbidden):
            PATIENT_SCOPED.admit_write(interaction, resource, BASE)
    with pytest.raises(Forbidden):
        PATIENT_SCOPED.admit_write("delete", {"resourceType": "Patient", "id": OWN}, BASE, b'{"resourceType":"Patient","id":"asha"}')


def test_server_written_types_refuse_every_token():
    for scope in ("patient/*.cruds", "user/*.cruds", "system/*.cruds"):
        access = Access(Grants.parse(scope), OWN)
        for interaction in ("create", "update", "patch"):
            with pytest.raises(Forbidden):
                access.admit_write(interaction, {"resourceType": "AuditEvent", "id": "a1"}, BASE)
        with pytest.raises(Forbidden):
            access.admit_write("delete", {"resourceType": "AuditEvent", "id": "a1"}, BASE, b'{"resourceType":"AuditEvent"}')


def test_unconfined_writers_are_not_held_to_one_patient():
    obs = {"resourceType": "Observation", "id": "o", "subject": ref(OTHER), "performer": [ref(OWN)]}
    Access(Grants.parse("system/*.cruds")).admit_write("create", obs, BASE)
    Access().admit_write("create", obs, BASE)


def test_patient_references_reads_local_and_absolute_forms():
    local, other = patient_references({"resourceType": "Observation", "subject": {"reference": f"{BASE}/Patient/a"},
                                       "focus": [{"reference": "Patient/b/_history/3"}],
                                       "performer": [{"reference": "Practitioner/p"}]}, BASE)
    assert local == {"a", "b"} and other == []
