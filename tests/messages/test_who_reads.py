"""Who reads a thread (docs/messages.md "Who sees what"), on both stores: its participants read every
message of it; ravi and hospital B read nothing of it through any path (read, search, includes, _has,
chains, history), B not even with asha's Consent sharing all her records with it, nor by breaking the
glass on asha's record."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.accounts import Users
from tests.governance.test_org_leaks import consent_for
from tests.scheduling._world import PASSWORD, B
from tests.smart_auth._tokens import BASE, mint

from ._threads import Threads


@pytest.fixture
def t(tmp_path, backend):
    t = Threads(tmp_path, backend)
    w = t.w
    t.header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    t.said = [t.say(t.doctor, t.header, "THREAD-SECRET how are you?"),
              t.say(w.asha_token, t.header, "THREAD-SECRET better"),
              t.say(w.son_token, t.header, "THREAD-SECRET she walks daily")]
    t.keys = {t.header["id"], *(m["id"] for m in t.said)}
    return t


def outsiders(t):
    w = t.w
    return {"ravi": w.ravi_token, "hospital B": w.b}


def paths(t) -> list[str]:
    """Every way of reaching the thread that a search, include, _has, chain or history offers."""
    w, hid = t.w, t.header["id"]
    asha = f"Patient/{w.asha}"
    return [
        "Communication", f"Communication?subject={asha}", f"Communication?patient={asha}",
        f"Communication?part-of=Communication/{hid}", "Communication?part-of:missing=true",
        f"Communication?_id={hid}", "Communication?_content=THREAD-SECRET",
        f"Communication?part-of:Communication.subject={asha}", "Communication?sender=Practitioner/prac-a",
        f"Patient?_id={w.asha}&_revinclude=Communication:subject", f"Patient?_id={w.asha}&_revinclude=Communication:patient",
        "Patient?_has:Communication:subject:status=in-progress",
        "Communication?_include=Communication:part-of&_include=Communication:subject",
        "Communication?status=in-progress", "Communication/_history", "_history",
        f"Communication/{hid}/_history", f"Communication/{t.said[0]['id']}/_history", "CommunicationRequest",
    ]


def test_participants_read_every_message_of_the_thread(t):
    w = t.w
    for token in (t.doctor, w.a, w.asha_token, w.son_token):
        for m in t.said:
            assert w.send(token, "GET", f"/fhir/Communication/{m['id']}").status_code == 200
        assert set(t.ids(token, f"Communication?part-of=Communication/{t.header['id']}")) == {m["id"] for m in t.said}


def _leaks(t, token) -> list[str]:
    found = []
    for path in paths(t):
        r = t.w.send(token, "GET", f"/fhir/{path}")
        body = r.get_data(as_text=True)
        unnamed = [k for k in t.keys if k not in path]          # the request's own words come back in links
        if r.status_code >= 500 or "THREAD-SECRET" in body.replace(path, "") or any(k in body for k in unnamed) \
                or (r.status_code == 200 and _messages(r.get_json())):
            found.append(f"{path}: {r.status_code}")
    for key in t.keys:
        r = t.w.send(token, "GET", f"/fhir/Communication/{key}")
        if r.status_code != 404:
            found.append(f"read {key}: {r.status_code}")
    return found


def _messages(bundle: dict) -> list[str]:
    return [e["fullUrl"] for e in bundle.get("entry", ()) if e.get("fullUrl", "").split("/")[-2:][0] in
            ("Communication", "CommunicationRequest")]


def test_ravi_and_hospital_b_see_nothing_of_the_thread(t):
    for who, token in outsiders(t).items():
        assert _leaks(t, token) == [], who


def test_asha_s_consent_to_share_her_records_with_b_shares_no_message(t):
    w = t.w
    consent = consent_for(f"Patient/{w.asha}", actor=B)
    del consent["provision"]["class"]                                       # every type, to B
    assert w.send(w.asha_token, "POST", "/fhir/Consent", consent).status_code == 201
    assert t.ids(w.b, f"Patient?_id={w.asha}") == [w.asha]                 # the Consent works
    assert _leaks(t, w.b) == []
    assert t.ids(w.b, "Patient?_has:Communication:subject:status=in-progress") == []     # no message to join
    assert t.ids(w.asha_token, "Patient?_has:Communication:subject:status=in-progress") == [w.asha]


def test_breaking_the_glass_on_asha_opens_no_message(t):
    w = t.w
    Users(w.ctx.store).add("drb", PASSWORD, "practitioner", "Practitioner/prac-b", B, break_glass=True)
    drb = mint(w.app, "user/*.rs", subject="drb", role="practitioner", organization=B,
               fhirUser=f"{BASE}/Practitioner/prac-b")
    r = w.send(drb, "POST", f"/fhir/Patient/{w.asha}/$break-glass",
               {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "unconscious"}]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert t.ids(drb, f"Patient?_id={w.asha}") == [w.asha]                 # the emergency view is open
    assert _leaks(t, drb) == []
