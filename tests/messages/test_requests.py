"""CommunicationRequest "please send your latest report" (docs/messages.md "Requests"), on both stores:
the doctor asks asha, asha (or her son) answers with a Communication basedOn the request, the server
completes the request; what the answer carries is what the doctor reads, a contentReference grants
nothing."""
from __future__ import annotations

import pytest

from tests.scheduling._world import issue

from ._threads import Threads

ASK = "Please send your latest blood report"


@pytest.fixture
def t(tmp_path, backend):
    return Threads(tmp_path, backend)


def ask(t, token=None, **more) -> dict:
    w = t.w
    request = {"resourceType": "CommunicationRequest", "status": "active", "subject": {"reference": f"Patient/{w.asha}"},
               "sender": {"reference": f"Patient/{w.asha}"}, "recipient": [{"reference": "Practitioner/prac-a"}],
               "payload": [{"contentString": ASK}], **more}
    return t.post(token or t.doctor, request)


def answer(request: dict, **more) -> dict:
    return {"resourceType": "Communication", "status": "completed",
            "basedOn": [{"reference": f"CommunicationRequest/{request['id']}"}], **more}


def test_asha_answers_the_doctor_s_request_and_the_request_completes(t):
    w = t.w
    report = t.post(w.b, {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "Lipid panel"},
                          "subject": {"reference": f"Patient/{w.asha}"}, "conclusion": "B-HELD-REPORT"})
    request = ask(t)
    assert request["requester"] == {"reference": "Practitioner/prac-a"}          # filled in from the token
    assert t.ids(w.asha_token, f"CommunicationRequest?sender=Patient/{w.asha}&status=active") == [request["id"]]
    for outsider in (w.ravi_token, w.b):
        assert t.ids(outsider, "CommunicationRequest") == []
    sent = t.post(w.asha_token, answer(request, payload=[
        {"contentReference": {"reference": f"DiagnosticReport/{report['id']}"}},
        {"contentString": "LDL 130 mg/dL, HDL 45 mg/dL"},
        {"contentAttachment": {"contentType": "text/plain", "data": "TERMIDEzMA==", "title": "lipids.txt"}}]))
    assert sent["subject"] == {"reference": f"Patient/{w.asha}"} and sent["sent"]
    assert {r["reference"] for r in sent["recipient"]} == {"Practitioner/prac-a", "Organization/hosp-a"}
    # the doctor reads the answer and what it carries, not the report it names (held by B, not shared)
    got = w.send(t.doctor, "GET", f"/fhir/Communication/{sent['id']}").get_json()
    assert got["payload"][1]["contentString"].startswith("LDL")
    assert w.send(t.doctor, "GET", f"/fhir/DiagnosticReport/{report['id']}").status_code == 404
    assert t.ids(t.doctor, f"Communication?based-on=CommunicationRequest/{request['id']}") == [sent["id"]]
    # the server completed the request; it takes no second answer
    assert w.send(t.doctor, "GET", f"/fhir/CommunicationRequest/{request['id']}").get_json()["status"] == "completed"
    r = w.send(w.asha_token, "POST", "/fhir/Communication", answer(request, payload=[{"contentString": "again"}]))
    assert r.status_code == 409 and "completed" in issue(r)
    for outsider in (w.ravi_token, w.b):
        assert t.ids(outsider, "Communication") == []


def test_her_son_answers_for_her_and_strangers_cannot(t):
    w = t.w
    request = ask(t)
    for stranger in (w.ravi_token, w.b):
        r = w.send(stranger, "POST", "/fhir/Communication", answer(request, payload=[{"contentString": "x"}]))
        assert r.status_code == 403 and "not a request you can read" in issue(r)
    sent = t.post(w.son_token, answer(request, payload=[{"contentString": "Her report is attached"}]))
    assert sent["sender"] == {"reference": f"RelatedPerson/{w.son}"}
    assert w.send(w.a, "GET", f"/fhir/CommunicationRequest/{request['id']}").get_json()["status"] == "completed"


def test_only_the_asked_answer_and_only_the_requester_changes_a_request(t):
    w = t.w
    request = ask(t, sender={"reference": "Organization/hosp-b"})          # asks hospital B, not asha
    r = w.send(w.asha_token, "POST", "/fhir/Communication", answer(request, payload=[{"contentString": "me?"}]))
    assert r.status_code == 403 and "asks" in issue(r)
    mine = ask(t)
    r = w.send(w.asha_token, "PUT", f"/fhir/CommunicationRequest/{mine['id']}", {**mine, "status": "completed"})
    assert r.status_code == 403 and "requester" in issue(r)
    t.put(t.doctor, {**mine, "status": "revoked"})
    r = w.send(w.asha_token, "POST", "/fhir/Communication", answer(mine, payload=[{"contentString": "late"}]))
    assert r.status_code == 409


def test_a_request_names_its_writer_as_requester_and_one_patient(t):
    w = t.w
    r = w.send(t.doctor, "POST", "/fhir/CommunicationRequest",
               {"resourceType": "CommunicationRequest", "status": "active", "requester": {"reference": "Practitioner/prac-b"}})
    assert r.status_code == 403 and "requester" in issue(r)
    r = w.send(t.doctor, "POST", "/fhir/CommunicationRequest",
               {"resourceType": "CommunicationRequest", "status": "active", "subject": {"reference": f"Patient/{w.asha}"},
                "sender": {"reference": f"Patient/{w.ravi}"}})
    assert r.status_code == 422 and f"Patient/{w.ravi}" in issue(r)


def test_an_answer_in_a_thread_goes_to_the_thread_s_participants(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    request = ask(t)
    sent = t.post(w.asha_token, answer(request, partOf=[{"reference": f"Communication/{header['id']}"}],
                                       payload=[{"contentString": "Here it is"}]))
    assert "recipient" not in sent and sent["subject"] == {"reference": f"Patient/{w.asha}"}
    assert t.ids(w.a, f"Communication?part-of=Communication/{header['id']}") == [sent["id"]]
    assert w.send(t.doctor, "GET", f"/fhir/CommunicationRequest/{request['id']}").get_json()["status"] == "completed"


def test_an_answer_naming_its_request_twice_completes_it_once(t):
    w = t.w
    request = ask(t)
    twice = answer(request, payload=[{"contentString": "here"}])
    twice["basedOn"] = twice["basedOn"] * 2
    t.post(w.asha_token, twice)
    history = w.send(t.doctor, "GET", f"/fhir/CommunicationRequest/{request['id']}/_history").get_json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["completed", "active"]


def test_the_threads_recipe_lists_single_answers_too_as_documented(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    single = t.post(w.asha_token, answer(ask(t), payload=[{"contentString": "Attached"}]))
    found = t.everything(w.asha_token, f"Communication?part-of:missing=true&subject=Patient/{w.asha}")
    assert sorted(found) == sorted([header["id"], single["id"]])
    bodies = {e["resource"]["id"]: e["resource"] for e in w.send(
        w.asha_token, "GET", f"/fhir/Communication?part-of:missing=true&subject=Patient/{w.asha}").get_json()["entry"]}
    assert [i for i, c in bodies.items() if not c.get("payload")] == [header["id"]]      # the header: no payload
