"""The conformance facts come from the write path's own profile outcome (validation/write_policy.py):
required and claimed profiles, recorded as the write judged them (docs/data-quality.md, "Facts")."""
from __future__ import annotations

import pytest

from fhirserver import create_app
from fhirserver.interactions.create import create
from tests.conftest import make_settings

CORE_OBSERVATION = "http://hl7.org/fhir/StructureDefinition/Observation"


@pytest.fixture
def ctx(tmp_path, backend):
    settings = make_settings(tmp_path, backend, profile_validation="warn",
                             required_profiles=f"Observation={CORE_OBSERVATION}")
    return create_app(settings).config["MEDPORT"]


def obs(**more) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "glucose"}, **more}


def test_required_and_claimed_profiles_give_the_conformance_and_the_failing_rules(ctx):
    create(ctx, "Observation", obs(valueString="5"))
    absent = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]}
    create(ctx, "Observation", obs(valueString="5", dataAbsentReason=absent))        # obs-6: value or reason, not both
    create(ctx, "Patient", {"resourceType": "Patient", "meta": {"profile": ["http://example.org/unknown"]}})
    counts = {(t, d, k): n for c, t, d, k, n in ctx.store.quality_counts()}
    assert counts[("Observation", "conformance", "conforms")] == 1
    assert counts[("Observation", "conformance", "not-conforming")] == 1
    assert counts[("Observation", "rule", "invariant:obs-6")] == 1
    # an unknown claimed profile is a warning and checks nothing: unchecked
    assert counts[("Patient", "conformance", "unchecked")] == 1


def test_conformance_is_to_the_required_profiles_when_there_are_any(ctx):
    """A record that meets the required profile conforms even if a profile it also claims fails; one that
    fails the required profile does not, whatever it claims."""
    us_core_patient = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    create(ctx, "Observation", obs(valueString="5", meta={"profile": [us_core_patient]}))       # wrong type claim
    absent = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]}
    create(ctx, "Observation", obs(valueString="5", dataAbsentReason=absent))                   # fails the required
    counts = {(t, d, k): n for c, t, d, k, n in ctx.store.quality_counts()}
    assert counts[("Observation", "conformance", "conforms")] == 1
    assert counts[("Observation", "conformance", "not-conforming")] == 1
