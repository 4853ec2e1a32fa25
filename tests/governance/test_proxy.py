"""Family proxy (docs/auth.md "Family proxy"; governance/proxy.py), on both stores: a son with a
related-person account acts for his mother exactly as she could while her delegation Consent is live:
reads her records (not another patient's), writes and books about her (not about anyone else), picks
her at sign-in (the picker lists only the patients who delegated to him); a revocation, an expiry or
no delegation at all leaves his token acting for nobody (401) on the next request; only the mother
grants, changes or revokes a delegation.
"""
from __future__ import annotations

import json
import re

import pytest

from fhirserver.governance import proxy
from fhirserver.interactions import write_origin
from fhirserver.interactions.create import create
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import BASE, auth, mint
from tests.smart_auth.test_oauth_helpers import (
    PASSWORD,
    authorize_params,
    consent_page,
    full_flow,
    login,
    make_world,
    pkce,
    query,
    start,
)

SCOPE = "openid fhirUser launch/patient patient/*.cruds offline_access"


def delegation(patient: str, related: str, status: str = "active", period: dict | None = None,
               role: str = proxy.DELEGATEE) -> dict:
    provision = {"type": "permit",
                 "purpose": [{"system": proxy.ACT_REASON, "code": proxy.FAMRQT}],
                 "actor": [{"role": {"coding": [{"system": proxy.ROLE_CODE, "code": role}]},
                            "reference": {"reference": f"RelatedPerson/{related}"}}]}
    if period:
        provision["period"] = period
    return {"resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient}"}, "provision": provision}


def obs(patient: str, text: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": f"Patient/{patient}"}}


def appointment(patient: str) -> dict:
    return {"resourceType": "Appointment", "status": "booked", "start": "2031-03-01T10:00:00Z",
            "end": "2031-03-01T10:30:00Z", "description": "cardiology follow-up",
            "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}]}


class World:
    """A mother (a patient account), a stranger (another patient), the son (RelatedPerson of the
    mother, a related-person account) and a nephew (RelatedPerson of the mother with no delegation)."""

    def __init__(self, tmp_path, monkeypatch, backend):
        w = make_world(tmp_path, monkeypatch, backend, auth="on")
        self.w, self.app, self.http, self.ctx = w, w.app, w.http, w.ctx
        self.mother = w.patient("Devi", "Lakshmi")
        self.stranger = w.patient("Kumar", "Ravi")
        self.son = self.put_server({"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{self.mother}"},
                                    "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                                                  "code": "SON"}]}],
                                    "name": [{"family": "Devi", "given": ["Arjun"]}]})
        self.nephew = self.put_server({"resourceType": "RelatedPerson",
                                       "patient": {"reference": f"Patient/{self.mother}"}})
        w.users.add("lakshmi", PASSWORD, "patient", fhir_user=f"Patient/{self.mother}")
        w.users.add("arjun", PASSWORD, "related-person", fhir_user=f"RelatedPerson/{self.son}")
        w.users.add("nephew", PASSWORD, "related-person", fhir_user=f"RelatedPerson/{self.nephew}")
        self.mother_token = mint(self.app, "patient/*.cruds", subject="lakshmi", role="patient",
                                 fhirUser=f"{BASE}/Patient/{self.mother}", patient=self.mother)
        self.mother_obs = self.put_server(obs(self.mother, "mother's blood pressure"))
        self.stranger_obs = self.put_server(obs(self.stranger, "STRANGER-PRIVATE"))

    def put_server(self, resource) -> str:
        return create(self.ctx, resource["resourceType"], resource).version.id

    def proxy_token(self, patient=None, user="arjun", related=None, scope="patient/*.cruds"):
        return mint(self.app, scope, subject=user, role="related-person",
                    fhirUser=f"{BASE}/RelatedPerson/{related or self.son}", patient=patient or self.mother)

    def send(self, token, method, url, body=None):
        return self.http.open(url, method=method, data=None if body is None else json.dumps(body),
                              headers={**auth(token), "Content-Type": FHIR_JSON})

    def grant(self, **kw) -> dict:
        """The mother delegates to her son through the API, with her own token."""
        r = self.send(self.mother_token, "POST", "/fhir/Consent", delegation(self.mother, self.son, **kw))
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()

    def ids(self, token, query) -> set[str]:
        r = self.send(token, "GET", f"/fhir/{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return {e["resource"]["id"] for e in r.get_json().get("entry", ())}


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    return World(tmp_path, monkeypatch, backend)


def test_the_son_reads_his_mothers_records_and_nobody_elses(world):
    world.grant()
    son = world.proxy_token()
    assert world.ids(son, "Observation") == {world.mother_obs}
    assert world.send(son, "GET", f"/fhir/Observation/{world.mother_obs}").status_code == 200
    assert world.send(son, "GET", f"/fhir/Patient/{world.mother}").status_code == 200
    assert world.send(son, "GET", f"/fhir/Observation/{world.stranger_obs}").status_code == 404
    assert world.send(son, "GET", f"/fhir/Patient/{world.stranger}").status_code == 404
    assert "STRANGER" not in world.send(son, "GET", f"/fhir/Patient/{world.stranger}/Observation").get_data(
        as_text=True)
    # naming the stranger in his token gives him nothing: she never delegated to him
    assert world.send(world.proxy_token(patient=world.stranger), "GET", "/fhir/Observation").status_code == 401


def test_the_son_writes_and_books_for_his_mother_only(world):
    world.grant()
    son = world.proxy_token()
    r = world.send(son, "POST", "/fhir/Appointment", appointment(world.mother))
    assert r.status_code == 201, r.get_data(as_text=True)
    booked = r.get_json()
    assert write_origin.of(booked) == "patient" and not write_origin.attested(booked)     # self-reported
    assert world.ids(world.mother_token, "Appointment") == {booked["id"]}                 # she sees it
    r = world.send(son, "POST", "/fhir/Observation", obs(world.mother, "home glucose"))
    assert r.status_code == 201 and not write_origin.attested(r.get_json())
    assert world.send(son, "POST", "/fhir/Observation", obs(world.stranger, "x")).status_code == 403
    both = appointment(world.mother)
    both["participant"].append({"actor": {"reference": f"Patient/{world.stranger}"}, "status": "accepted"})
    assert world.send(son, "POST", "/fhir/Appointment", both).status_code == 403
    assert world.send(son, "POST", "/fhir/Appointment", appointment(world.stranger)).status_code == 403


def test_revocation_by_the_mother_works_on_the_next_request(world):
    consent = world.grant()
    son = world.proxy_token()
    assert world.send(son, "GET", "/fhir/Observation").status_code == 200
    r = world.send(world.mother_token, "PUT", f"/fhir/Consent/{consent['id']}", {**consent, "status": "inactive"})
    assert r.status_code == 200, r.get_data(as_text=True)
    r = world.send(son, "GET", "/fhir/Observation")
    assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]
    assert world.send(son, "POST", "/fhir/Appointment", appointment(world.mother)).status_code == 401
    # she changes her mind: active again, and the same token works again
    assert world.send(world.mother_token, "PUT", f"/fhir/Consent/{consent['id']}", consent).status_code == 200
    assert world.send(son, "GET", "/fhir/Observation").status_code == 200
    assert world.send(world.mother_token, "DELETE", f"/fhir/Consent/{consent['id']}").status_code in (200, 204)
    assert world.send(son, "GET", "/fhir/Observation").status_code == 401


@pytest.mark.parametrize("period", [{"end": "2020-01-01"}, {"start": "2099-01-01T00:00:00Z"},
                                    {"start": "2019-01-01", "end": "2020-12-31T23:59:59Z"}])
def test_an_expired_or_future_delegation_grants_nothing(world, period):
    world.grant(period=period)
    assert world.send(world.proxy_token(), "GET", "/fhir/Observation").status_code == 401


def test_a_delegation_in_force_now_is_honoured(world):
    world.grant(period={"start": "2020-01-01", "end": "2099-12-31"})
    assert world.ids(world.proxy_token(), "Observation") == {world.mother_obs}


@pytest.mark.parametrize("change", ["inactive-related", "related-of-another", "wrong-role", "draft"])
def test_anything_short_of_a_live_delegation_grants_nothing(world, change):
    if change == "draft":
        world.grant(status="draft")
    elif change == "wrong-role":
        world.grant(role="GRANTEE")
    else:
        world.grant()
        related = json.loads(world.ctx.store.read("RelatedPerson", world.son).body)
        if change == "inactive-related":
            related["active"] = False
        else:
            related["patient"] = {"reference": f"Patient/{world.stranger}"}
        from fhirserver.interactions.update import update
        update(world.ctx, "RelatedPerson", world.son, related)
    assert world.send(world.proxy_token(), "GET", "/fhir/Observation").status_code == 401


def test_a_related_person_without_delegation_gets_nothing(world):
    world.grant()
    nephew = world.proxy_token(user="nephew", related=world.nephew)
    for method, url, body in (("GET", "/fhir/Observation", None), ("GET", f"/fhir/Patient/{world.mother}", None),
                              ("POST", "/fhir/Appointment", appointment(world.mother))):
        assert world.send(nephew, method, url, body).status_code == 401
    # nor does a son's token that names no patient
    no_patient = mint(world.app, "patient/*.cruds", subject="arjun", role="related-person",
                      fhirUser=f"{BASE}/RelatedPerson/{world.son}")
    assert world.send(no_patient, "GET", "/fhir/Observation").status_code == 401


def test_only_the_mother_grants_changes_or_revokes_a_delegation(world):
    consent = world.grant()
    son = world.proxy_token()
    nephew_grant = delegation(world.mother, world.nephew)
    assert world.send(son, "POST", "/fhir/Consent", nephew_grant).status_code == 403
    assert world.send(son, "POST", "/fhir/Consent", {**nephew_grant, "status": "proposed"}).status_code == 403
    extended = {**consent, "provision": {**consent["provision"], "period": {"end": "2099-01-01"}}}
    assert world.send(son, "PUT", f"/fhir/Consent/{consent['id']}", extended).status_code == 403
    assert world.send(son, "PUT", f"/fhir/Consent/{consent['id']}", {**consent, "status": "inactive"}).status_code == 403
    assert world.send(son, "DELETE", f"/fhir/Consent/{consent['id']}").status_code == 403
    # nor may he make himself somebody else's RelatedPerson, or change his own record
    own = json.loads(world.ctx.store.read("RelatedPerson", world.son).body)
    assert world.send(son, "PUT", f"/fhir/RelatedPerson/{world.son}", {**own, "period": {"end": "2099"}}).status_code == 403
    assert world.send(son, "POST", "/fhir/RelatedPerson", {
        "resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{world.mother}"}}).status_code == 403
    # a sharing Consent of the mother's he may only propose; she activates it
    share = {**delegation(world.mother, world.son), "provision": {"type": "permit"}}
    assert world.send(son, "POST", "/fhir/Consent", {**share, "status": "active"}).status_code == 403
    assert world.send(son, "POST", "/fhir/Consent", {**share, "status": "proposed"}).status_code == 201
    # without any delegation he can write nothing at all
    assert world.send(world.mother_token, "DELETE", f"/fhir/Consent/{consent['id']}").status_code in (200, 204)
    assert world.send(son, "POST", "/fhir/Consent", delegation(world.mother, world.son)).status_code == 401


# ---- sign-in: the patient picker ---------------------------------------------------------------

def _picker(world, username="arjun"):
    client, _ = world.w.app_client()
    _verifier, challenge = pkce()
    http = world.w.browser()
    r = start(http, authorize_params(client.client_id, challenge, SCOPE))
    request_id = query(r.headers["Location"])["request"]
    assert login(http, request_id, username).status_code == 303
    page = consent_page(http, request_id).get_data(as_text=True)
    return client, page


def test_the_picker_lists_exactly_the_patients_who_delegated(world):
    world.grant()
    # not delegations to the son: the stranger names him but he is not her RelatedPerson; revoked;
    # and a delegation to the nephew
    world.put_server(delegation(world.stranger, world.son))
    world.put_server(delegation(world.mother, world.son, status="inactive"))
    world.put_server(delegation(world.mother, world.nephew, period={"end": "2001-01-01"}))
    _client, page = _picker(world)
    assert set(re.findall(r'name="patient" value="([^"]+)"', page)) == {world.mother}
    assert "Lakshmi" in page and "Ravi" not in page and 'name="patient_search"' not in page
    _client, page = _picker(world, "nephew")
    assert re.findall(r'name="patient" value="([^"]+)"', page) == []
    assert "Nobody has given you access" in page


def test_the_son_signs_in_picks_his_mother_and_revocation_ends_refresh(world):
    world.grant()
    client, _ = world.w.app_client()
    body = full_flow(world.w, client.client_id, "arjun", SCOPE, fields={"patient": world.mother})
    assert body["patient"] == world.mother and "patient/*.cruds" in body["scope"]
    token = body["access_token"]
    assert world.ids(token, "Observation") == {world.mother_obs}
    assert world.send(token, "POST", "/fhir/Appointment", appointment(world.mother)).status_code == 201
    # picking someone who did not delegate is refused on the page
    from tests.smart_auth.test_oauth_helpers import decide
    http = world.w.browser()
    _v, challenge = pkce()
    r = start(http, authorize_params(client.client_id, challenge, SCOPE))
    request_id = query(r.headers["Location"])["request"]
    login(http, request_id, "arjun")
    assert decide(http, request_id, patient=world.stranger).status_code == 400
    # the mother revokes: the API refuses the token, and its refresh token gives no new one
    consent = world.ids(world.mother_token, "Consent")
    for cid in consent:
        world.send(world.mother_token, "DELETE", f"/fhir/Consent/{cid}")
    assert world.send(token, "GET", "/fhir/Observation").status_code == 401
    r = world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                             "client_id": client.client_id})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_cli_adds_a_related_person_account(tmp_path, monkeypatch):
    import io

    from fhirserver.cli import main
    from fhirserver.config import Settings
    from fhirserver.smart_auth import passwords
    from fhirserver.smart_auth.accounts import Users
    from fhirserver.storage import open_store
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    url = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["user", "add", "arjun", "--role", "related-person", "--fhir-user", "RelatedPerson/7",
                 "--password-stdin", "--store", url]) == 0
    store = open_store(Settings(store=url, sqlite_synchronous="NORMAL"))
    try:
        user = Users(store).get("arjun")
        assert user.role == "related-person" and user.fhir_user == "RelatedPerson/7"
        with pytest.raises(ValueError):
            Users(store).add("bad", "correct horse", "related-person", "Patient/7")
    finally:
        store.close()
