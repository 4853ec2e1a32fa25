"""The message rules on every write (docs/messages.md "Rules"), on both stores: who sends, which thread a
message joins, what never changes after sending, who retracts, who closes a thread."""
from __future__ import annotations

import pytest

from tests.scheduling._world import B, issue

from ._threads import Threads


@pytest.fixture
def t(tmp_path, backend):
    return Threads(tmp_path, backend)


def test_a_closed_thread_refuses_messages_until_its_creator_reopens_it(t):
    w = t.w
    header = t.open()
    closed = t.put(t.doctor, {**header, "status": "completed"})
    r = w.send(w.asha_token, "POST", "/fhir/Communication", _message(header, "Still there?"))
    assert r.status_code == 409 and "closed" in issue(r)
    assert t.put(w.asha_token, {**closed, "status": "in-progress"}, status=403)      # only its creator reopens
    t.put(w.a, {**closed, "status": "in-progress"})                  # hospital A holds it: its creator
    t.say(w.asha_token, header, "Still there?")


def test_only_the_sender_retracts_and_what_was_said_never_changes(t):
    w = t.w
    header = t.open()
    said = t.say(t.doctor, header, "Your results are normal")
    r = w.send(w.asha_token, "PUT", f"/fhir/Communication/{said['id']}", {**said, "status": "entered-in-error"})
    assert r.status_code == 403 and "sender" in issue(r)
    r = w.send(t.doctor, "PUT", f"/fhir/Communication/{said['id']}", {**said, "payload": [{"contentString": "abnormal"}]})
    assert r.status_code == 422 and "payload" in issue(r)
    read = t.put(w.asha_token, {**said, "status": "completed", "received": "2031-03-03T10:00:00Z"})   # marked read
    retracted = t.put(t.doctor, {**read, "status": "entered-in-error"})
    assert retracted["payload"] == said["payload"]
    assert t.put(t.doctor, {**retracted, "status": "in-progress"}, status=422)      # a retraction stands
    assert w.send(w.asha_token, "DELETE", f"/fhir/Communication/{said['id']}").status_code == 403
    assert w.send(w.son_token, "DELETE", f"/fhir/Communication/{said['id']}").status_code == 403
    assert w.send(t.doctor, "DELETE", f"/fhir/Communication/{said['id']}").status_code in (200, 204)


@pytest.mark.parametrize("who, sender", [("asha", "Patient/{ravi}"), ("asha", "Practitioner/prac-a"),
                                         ("son", "Patient/{asha}"), ("doctor", "Organization/hosp-b"),
                                         ("doctor", "Practitioner/prac-b"), ("ravi", "Patient/{asha}")])
def test_a_forged_sender_is_refused(t, who, sender):
    w = t.w
    header = t.open()
    token = {"asha": w.asha_token, "son": w.son_token, "doctor": t.doctor, "ravi": w.ravi_token}[who]
    forged = sender.format(asha=w.asha, ravi=w.ravi)
    r = w.send(token, "POST", "/fhir/Communication", _message(header, "Hello", sender={"reference": forged}))
    assert r.status_code == 403, r.get_data(as_text=True)
    assert t.ids(w.system, f"Communication?part-of=Communication/{header['id']}") == []


def test_joining_a_thread_one_cannot_read_is_refused_like_a_missing_thread(t):
    w = t.w
    header = t.open()
    for token in (w.ravi_token, w.b):
        joined = w.send(token, "POST", "/fhir/Communication", _message(header, "Let me in"))
        missing = w.send(token, "POST", "/fhir/Communication", _message({"id": "no-such-thread"}, "Let me in"))
        assert joined.status_code == missing.status_code == 403
        assert issue(joined).replace(header["id"], "X") == issue(missing).replace("no-such-thread", "X")
    assert t.ids(w.system, f"Communication?part-of=Communication/{header['id']}") == []


def test_a_message_is_about_its_thread_s_patient_and_goes_to_its_participants(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    r = w.send(t.doctor, "POST", "/fhir/Communication",
               _message(header, "Hi", subject={"reference": f"Patient/{w.ravi}"}))
    assert r.status_code == 422 and "subject" in issue(r)
    r = w.send(t.doctor, "POST", "/fhir/Communication", _message(header, "Hi", recipient=[{"reference": B}]))
    assert r.status_code == 422 and "Organization/hosp-b" in issue(r)
    # a header naming a second patient would put the thread in that patient's compartment
    r = w.send(t.doctor, "POST", "/fhir/Communication",
               {"resourceType": "Communication", "status": "in-progress", "subject": {"reference": f"Patient/{w.asha}"},
                "recipient": [{"reference": f"Patient/{w.ravi}"}]})
    assert r.status_code == 422 and f"Patient/{w.ravi}" in issue(r)


def test_only_the_creator_changes_a_header(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    r = w.send(w.asha_token, "PUT", f"/fhir/Communication/{header['id']}", {**header, "status": "completed"})
    assert r.status_code == 403 and "creator" in issue(r)
    r = w.send(t.doctor, "PUT", f"/fhir/Communication/{header['id']}",
               {**header, "subject": {"reference": f"Patient/{w.ravi}"}})
    assert r.status_code == 422
    assert w.send(w.asha_token, "DELETE", f"/fhir/Communication/{header['id']}").status_code == 403


def test_a_thread_asha_opens_reaches_the_hospital_she_addresses(t):
    w = t.w
    header = t.open(token=w.asha_token, recipient=[{"reference": "Organization/hosp-a"}])
    assert header["sender"] == {"reference": f"Patient/{w.asha}"}
    question = t.say(w.asha_token, header, "Can I take paracetamol?")
    answer = t.say(t.doctor, header, "Yes, up to three a day", recipient=[{"reference": f"Patient/{w.asha}"}])
    for token in (t.doctor, w.a, w.asha_token, w.son_token):
        assert t.ids(token, f"Communication?part-of=Communication/{header['id']}&_sort=sent") == [question["id"], answer["id"]]
    assert t.ids(w.b, "Communication") == [] and t.ids(w.ravi_token, "Communication") == []
    t.put(w.asha_token, {**header, "status": "completed"})          # its creator closes it
    assert w.send(t.doctor, "POST", "/fhir/Communication", _message(header, "One more thing")).status_code == 409


def _message(header: dict, text: str, **more) -> dict:
    return {"resourceType": "Communication", "status": "in-progress",
            "partOf": [{"reference": f"Communication/{header['id']}"}], "payload": [{"contentString": text}], **more}


def test_the_rules_hold_in_transaction_bundles_and_patches(t):
    w = t.w
    asha = {"reference": f"Patient/{w.asha}"}
    header = {"resourceType": "Communication", "status": "in-progress", "subject": asha, "recipient": [asha]}
    message = {"resourceType": "Communication", "status": "in-progress", "partOf": [{"reference": "urn:uuid:h"}],
               "payload": [{"contentString": "Welcome"}]}
    r = w.send(t.doctor, "POST", "/fhir", _transaction((header, "urn:uuid:h"), (message, "urn:uuid:m")))
    assert r.status_code == 200, r.get_data(as_text=True)
    hid = r.get_json()["entry"][0]["response"]["location"].split("/")[1]
    said = t.ids(w.asha_token, f"Communication?part-of=Communication/{hid}")
    assert len(said) == 1
    stored = w.send(w.asha_token, "GET", f"/fhir/Communication/{said[0]}").get_json()
    assert stored["sender"] == {"reference": "Practitioner/prac-a"} and stored["subject"] == asha
    # a forged sender in a Bundle refuses the whole Bundle
    forged = {**message, "partOf": [{"reference": f"Communication/{hid}"}], "sender": {"reference": "Organization/hosp-b"}}
    fine = {**message, "partOf": [{"reference": f"Communication/{hid}"}]}
    r = w.send(t.doctor, "POST", "/fhir", _transaction((fine, "urn:uuid:a"), (forged, "urn:uuid:b")))
    assert r.status_code == 403
    assert t.ids(w.asha_token, f"Communication?part-of=Communication/{hid}") == said
    # what was said does not change through a patch either
    r = w.http.open(f"/fhir/Communication/{said[0]}", method="PATCH", headers={
        "Content-Type": "application/json-patch+json", "Authorization": f"Bearer {t.doctor}"},
        data='[{"op": "replace", "path": "/payload/0/contentString", "value": "Goodbye"}]')
    assert r.status_code == 422 and "payload" in issue(r)


def _transaction(*entries) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": "Communication"}}
        for resource, url in entries]}


def test_a_message_is_part_of_one_thread(t):
    w = t.w
    mine, other = t.open(), t.open(token=w.b, recipient=[{"reference": "Organization/hosp-b"}])
    r = w.send(t.doctor, "POST", "/fhir/Communication", {**_message(mine, "Hi"), "partOf": [
        {"reference": f"Communication/{mine['id']}"}, {"reference": f"Communication/{other['id']}"}]})
    assert r.status_code == 422 and "one thread" in issue(r)
    assert t.ids(w.b, f"Communication?part-of=Communication/{other['id']}") == []


def test_a_recipient_only_marks_a_message_read(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    said = t.say(t.doctor, header, "Take the tablets after food")
    for change in ({"topic": {"text": "Stop the tablets"}}, {"priority": "stat"}, {"note": [{"text": "doctor: stop"}]},
                   {"about": [{"reference": f"Patient/{w.asha}"}]}, {"status": "stopped"},
                   {"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Stop</div>"}}):
        for token in (w.asha_token, w.son_token):
            r = w.send(token, "PUT", f"/fhir/Communication/{said['id']}", {**said, **change})
            assert r.status_code == 403 and "read" in issue(r), (change, r.get_data(as_text=True))
    read = t.put(w.son_token, {**said, "status": "completed", "received": "2031-03-03T10:00:00Z"})
    t.put(t.doctor, {**read, "priority": "urgent"})             # the sender's own message
    t.put(w.a, {**read, "priority": "routine"})                 # its holder's


def test_a_header_names_no_second_patient_after_an_update_either(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    r = w.send(t.doctor, "PUT", f"/fhir/Communication/{header['id']}",
               {**header, "recipient": [{"reference": f"Patient/{w.asha}"}, {"reference": f"Patient/{w.ravi}"}]})
    assert r.status_code == 422 and f"Patient/{w.ravi}" in issue(r)
    assert t.ids(w.ravi_token, "Communication") == []
    opened = t.open(token=w.asha_token, recipient=[{"reference": "Organization/hosp-a"}])
    r = w.send(w.asha_token, "PUT", f"/fhir/Communication/{opened['id']}",
               {**opened, "recipient": [{"reference": f"Patient/{w.ravi}"}]})
    assert r.status_code == 422 and t.ids(w.ravi_token, "Communication") == []
