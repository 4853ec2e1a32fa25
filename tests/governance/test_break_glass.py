"""Break the glass (docs/governance.md), on both stores: a privileged practitioner of hospital B opens
emergency access to one of A's patients with a reason; for its duration every token of that user sees
that patient's whole record and nothing more (exact totals); the stop or the expiry ends it at once;
start, each widened request and stop are AuditEvents in the patient's compartment, held by B.
"""
from __future__ import annotations

import time
import types

import pytest

from fhirserver.cli import main
from fhirserver.governance import break_glass
from fhirserver.smart_auth.accounts import Users
from tests.conftest import STORES
from tests.governance.test_policy import B, World
from tests.smart_auth._tokens import BASE, mint

DCM = "http://dicom.nema.org/resources/ontology/DCM"
PW = "correct horse battery"


class Glass(World):
    def __init__(self, tmp_path, backend):
        super().__init__(tmp_path, backend)
        users = Users(self.app.config["MEDPORT"].store)
        users.add("drb", PW, "practitioner", "Practitioner/prb", B, break_glass=True)
        users.add("drc", PW, "practitioner", "Practitioner/prc", B)
        self.drb = self.practitioner("drb", "Practitioner/prb")
        self.drb2 = self.practitioner("drb", "Practitioner/prb", client_id="another-app")
        self.drc = self.practitioner("drc", "Practitioner/prc")

    def practitioner(self, username, fhir_user, client_id="app"):
        return mint(self.app, "user/*.rs", subject=username, client_id=client_id, role="practitioner",
                    organization=B, fhirUser=f"{BASE}/{fhir_user}")

    def glass(self, token, patient, **params):
        body = {"resourceType": "Parameters", "parameter": [
            {"name": k, ("valueInteger" if k == "duration" else "valueCode" if k == "action" else "valueString"): v}
            for k, v in params.items()]}
        return self.send(token, "POST", f"/fhir/Patient/{patient}/$break-glass", body)

    def events(self, query) -> list[dict]:
        r = self.send(self.exchange, "GET", f"/fhir/AuditEvent?{query}&_count=100")
        assert r.status_code == 200, r.get_data(as_text=True)
        return [e["resource"] for e in r.get_json().get("entry", ())]

    def nothing_of_p1(self, token):
        assert self.ids(token, "Observation") == (0, set())
        assert self.ids(token, "Patient") == (0, set())
        assert self.ids(token, "Condition") == (0, set())
        assert self.send(token, "GET", f"/fhir/Observation/{self.obs1}").status_code == 404


@pytest.fixture(params=STORES)
def g(request, tmp_path):
    return Glass(tmp_path, request.param)


def test_break_the_glass_opens_one_patients_whole_record_until_stopped(g):
    g.nothing_of_p1(g.drb)
    r = g.glass(g.drb, g.p1, reason="unconscious in the emergency room")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = {p["name"]: p for p in r.get_json()["parameter"]}
    assert out["action"]["valueCode"] == "start" and "expires" in out
    # the whole record of p1, through any token of that user; nothing of p2; totals exact
    for token in (g.drb, g.drb2):
        assert g.ids(token, "Observation") == (1, {g.obs1})
        assert g.ids(token, "Condition") == (1, {g.cond1})
        assert g.ids(token, "Patient") == (1, {g.p1})
    assert g.send(g.drb, "GET", f"/fhir/Observation/{g.obs1}").status_code == 200
    assert g.send(g.drb, "GET", f"/fhir/Observation/{g.obs2}").status_code == 404
    assert g.send(g.drb, "GET", f"/fhir/Patient/{g.p2}").status_code == 404
    assert g.ids(g.drb, f"Observation?subject=Patient/{g.p2}") == (0, set())
    # another practitioner of B sees nothing; nor does B's hospital token
    g.nothing_of_p1(g.drc)
    assert g.ids(g.b, "Observation") == (0, set())
    # the custodian rule still holds: emergency access reads, it does not change A's records
    seen = g.send(g.drb, "GET", f"/fhir/Observation/{g.obs1}").get_json()
    assert g.send(g.drb, "PUT", f"/fhir/Observation/{g.obs1}", seen).status_code == 403

    r = g.glass(g.drb, g.p1, action="stop")
    assert r.status_code == 200, r.get_data(as_text=True)
    g.nothing_of_p1(g.drb)
    assert g.glass(g.drb, g.p1, action="stop").status_code == 404          # nothing left to stop


def test_start_access_and_stop_are_audited_in_the_patients_compartment(g):
    assert g.glass(g.drb, g.p1, reason="anaphylaxis").status_code == 200
    for _ in range(3):                                  # three requests that use the widening
        g.send(g.drb, "GET", "/fhir/Observation")
    g.send(g.drb, "GET", "/fhir/Organization")          # a directory search: not widened, not audited
    assert g.glass(g.drb, g.p1, action="stop").status_code == 200

    started = g.events(f"subtype={DCM}|110127")
    stopped = g.events(f"subtype={DCM}|110128")
    accessed = g.events(f"type={DCM}|110113&subtype=http://hl7.org/fhir/restful-interaction|search-type")
    assert len(started) == 1 and len(stopped) == 1 and len(accessed) == 3
    for event in started + stopped + accessed:
        assert event["type"]["code"] == "110113"
        assert event["purposeOfEvent"][0]["coding"][0]["code"] == "BTG"
        assert event["agent"][0]["purposeOfUse"][0]["text"] == "anaphylaxis"
        assert event["entity"][0]["what"]["reference"] == f"Patient/{g.p1}"
        assert event["agent"][0]["who"]["reference"] == "Practitioner/prb"
        assert event["agent"][0]["altId"] == "drb"
    # the patient reads every one of them with their own token
    total, seen = g.ids(g.p1_token, f"AuditEvent?type={DCM}|110113")
    assert seen == {e["id"] for e in started + stopped + accessed} and total == 5
    # B's privacy officer reviews B's overrides with an ordinary search; A's hospital sees none of B's
    assert g.ids(g.b, f"AuditEvent?subtype={DCM}|110127")[1] == {started[0]["id"]}
    assert g.ids(g.a, f"AuditEvent?subtype={DCM}|110127") == (0, set())
    # nobody writes or edits an AuditEvent with a token
    assert g.send(g.exchange, "POST", "/fhir/AuditEvent", {**started[0], "id": None}).status_code in (400, 403)


def test_the_session_expires(g, monkeypatch):
    assert g.glass(g.drb, g.p1, reason="trauma", duration=5).status_code == 200
    assert g.ids(g.drb, "Observation") == (1, {g.obs1})
    later = time.time() + 6 * 60
    monkeypatch.setattr(break_glass, "time", types.SimpleNamespace(time=lambda: later))
    g.nothing_of_p1(g.drb)
    stopped = g.events(f"subtype={DCM}|110128")
    assert len(stopped) == 1 and stopped[0]["entity"][0]["description"] == "emergency access expired"
    g.nothing_of_p1(g.drb)
    assert len(g.events(f"subtype={DCM}|110128")) == 1          # audited once


def test_an_expired_session_of_an_absent_user_is_closed_by_any_break_glass_call(g, monkeypatch):
    assert g.glass(g.drb, g.p1, reason="trauma", duration=1).status_code == 200
    later = time.time() + 120
    monkeypatch.setattr(break_glass, "time", types.SimpleNamespace(time=lambda: later))
    Users(g.app.config["MEDPORT"].store).add("drd", PW, "practitioner", "Practitioner/prd", B, break_glass=True)
    drd = g.practitioner("drd", "Practitioner/prd")
    assert g.glass(drd, g.p2, reason="stroke").status_code == 200
    assert len(g.events(f"subtype={DCM}|110128")) == 1
    assert g.ids(drd, "Patient") == (1, {g.p2})          # one session does not open another's patient


def test_only_the_privileged_break_the_glass_and_only_with_a_reason(g):
    assert g.glass(g.drc, g.p1, reason="curious").status_code == 403
    assert g.glass(g.drc, "no-such-patient", reason="curious").status_code == 403     # no existence oracle
    assert g.glass(g.p1_token, g.p1, reason="me").status_code == 403
    assert g.glass(g.b, g.p1, reason="backend").status_code == 403
    assert g.glass(g.drb, g.p1).status_code == 400
    assert g.glass(g.drb, g.p1, reason="   ").status_code == 400
    assert g.glass(g.drb, g.p1, reason="x", duration=61).status_code == 400      # above the setting
    assert g.glass(g.drb, g.p1, reason="x", action="pause").status_code == 400
    assert g.glass(g.drb, "no-such-patient", reason="x").status_code == 404
    assert g.send(g.drb, "GET", f"/fhir/Patient/{g.p1}/$break-glass?reason=x").status_code == 405
    g.nothing_of_p1(g.drb)
    assert g.events(f"subtype={DCM}|110127") == []


def test_the_privilege_is_for_practitioners_and_set_by_the_cli(tmp_path, monkeypatch, capsys):
    import io
    store = World(tmp_path, "sqlite").app.config["MEDPORT"].store
    with pytest.raises(ValueError):
        Users(store).add("adm", PW, "admin", break_glass=True)
    url = f"sqlite:///{tmp_path}/medport.db"
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    assert main(["user", "add", "dre", "--role", "practitioner", "--fhir-user", "Practitioner/e",
                 "--organization", B, "--break-glass", "--password-stdin", "--store", url]) == 0
    assert Users(store).get("dre").break_glass is True
