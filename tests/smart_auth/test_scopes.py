"""SMART v1/v2 scope grammar and the decisions it leads to (App Launch 2.2 scopes)."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.scopes import Grants, ScopeError, parse_scope

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def test_v1_and_v2_forms():
    assert parse_scope("patient/Observation.read").permissions == "rs"
    assert parse_scope("user/*.write").permissions == "cud"
    assert parse_scope("system/*.*").permissions == "cruds"
    s = parse_scope(f"patient/Observation.rs?category={LAB}")
    assert (s.context, s.resource_type, s.permissions, s.query) == ("patient", "Observation", "rs",
                                                                   (("category", LAB),))
    for other in ("openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access"):
        assert parse_scope(other) is None


@pytest.mark.parametrize("bad", ["patient/Observation.sr", "patient/Observation.rr", "patient/Observation.x",
                                 "patient/Unicorn.rs", "patient/observation.rs", "patient/Observation.",
                                 "patient/Observation.read?category=x", "admin/Patient.rs"])
def test_malformed(bad):
    if bad.startswith("admin/"):
        assert parse_scope(bad) is None          # not a SMART resource scope at all
    else:
        with pytest.raises(ScopeError):
            parse_scope(bad)


def test_decisions():
    g = Grants.parse(f"openid patient/Patient.r patient/Observation.rs?category={LAB} launch/patient")
    assert g.decide("read", "Patient").allowed and g.decide("read", "Patient").patient_compartment
    assert not g.decide("search-type", "Patient").allowed           # r without s: no search
    assert not g.decide("update", "Patient").allowed
    obs = g.decide("search-type", "Observation")
    assert obs.allowed and obs.patient_compartment and obs.alternatives == ((("category", LAB),),)
    assert not g.decide("read", "Condition").allowed


def test_unrestricted_scope_wins_and_user_beats_patient():
    g = Grants.parse(f"patient/Observation.rs?category={LAB} patient/Observation.rs")
    assert g.decide("search-type", "Observation").alternatives == ()
    g = Grants.parse("patient/*.rs user/Observation.cruds")
    d = g.decide("read", "Observation")
    assert d.allowed and not d.patient_compartment
    assert g.decide("read", "Condition").patient_compartment
    system = Grants.parse("system/*.rs")
    assert system.decide("history-system", "Patient").allowed and not system.decide("create", "Patient").allowed
