"""A Consent decides the same whatever form its references take (docs/governance.md, Consent): a
version-specific reference (`Patient/p1/_history/1`, `Organization/hosp-b/_history/2`) or an absolute
one names the same resource as the plain form (R4 references.html#literal; the search index reads
them so). The decision read them by string: a deny Consent whose patient was version-specific was
ignored (opt-out: the hospital it denied saw everything), and a nested deny naming the hospital by a
version-specific reference did not apply (the exception "everyone but hospital B" let B in).
On both stores.
"""
from __future__ import annotations

import pytest

from tests.governance.test_policy import BASE, World, mint

C = "Organization/hosp-c"


@pytest.fixture
def w(tmp_path, backend):
    return World(tmp_path, backend)


@pytest.fixture
def opt_out(tmp_path, backend):
    return World(tmp_path, backend, sharing_default="opt-out")


@pytest.mark.parametrize("form", ["Patient/{p}/_history/1", BASE + "/Patient/{p}/_history/1"])
def test_an_opt_out_deny_about_a_version_specific_patient_reference_denies(opt_out, form):
    w = opt_out
    assert w.ids(w.b, "Observation")[1] == {w.obs1, w.obs2}          # opt-out: shared by default
    deny = w.consent()
    deny["provision"]["type"] = "deny"
    deny["patient"] = {"reference": form.format(p=w.p1)}
    w.create(w.p1_token, deny)
    assert w.ids(w.b, "Observation")[1] == {w.obs2}
    assert w.send(w.b, "GET", f"/fhir/Observation/{w.obs1}").status_code == 404


@pytest.mark.parametrize("form", ["Organization/hosp-b/_history/1", BASE + "/Organization/hosp-b/_history/1",
                                  BASE + "/Organization/hosp-b"])
def test_a_nested_deny_naming_the_hospital_in_any_literal_form_applies_to_it(w, form):
    c = mint(w.app, "system/*.cruds", client_id="hosp-c-ehr", organization=C)
    consent = w.consent(actor=None)          # the whole exchange ...
    consent["provision"]["provision"] = [{"type": "deny", "actor": [     # ... but hospital B
        {"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                              "code": "IRCP"}]}, "reference": {"reference": form}}]}]
    w.create(w.p1_token, consent)
    assert w.ids(w.b, "Observation") == (0, set())
    assert w.ids(c, "Observation")[1] == {w.obs1}
