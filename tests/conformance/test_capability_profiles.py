"""The CapabilityStatement names, per type, the profiles the server ships and requires (capability.py)."""
from __future__ import annotations

from fhirserver import create_app
from fhirserver.subscriptions import spec as subscription_spec
from tests.conftest import make_settings

MEDPORT_PATIENT = "https://medport.health/fhir/StructureDefinition/medport-patient"


def resources_of(app) -> dict[str, dict]:
    cs = app.test_client().get("/fhir/metadata").get_json()
    return {r["type"]: r for r in cs["rest"][0]["resource"]}


def test_shipped_and_required_profiles_are_listed(tmp_path):
    required = "Organization=https://city.test/fhir/StructureDefinition/org"
    by_type = resources_of(create_app(make_settings(tmp_path, required_profiles=required)))
    assert MEDPORT_PATIENT in by_type["Patient"]["supportedProfile"]
    assert "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient" in by_type["Patient"]["supportedProfile"]
    assert by_type["Organization"]["supportedProfile"] == ["https://city.test/fhir/StructureDefinition/org"]
    assert by_type[subscription_spec.TYPE]["supportedProfile"] == [subscription_spec.PROFILE]
    assert "extension" in by_type[subscription_spec.TYPE]
    assert "supportedProfile" not in by_type["Encounter"]
