"""A story over HTTP against a real `medport serve --demo` and a real subscriber: a doctor at the demo
hospital orders a blood test at another organisation's laboratory (Deccan Diagnostics, docs/orders.md).

The laboratory subscribes to Tasks addressed to it, the hospital to results of its orders, and Asha
(the patient, through the demo SMART app) to her own final reports (docs/subscriptions.md); each
subscriber is a small HTTP receiver started by the test on loopback. The laboratory cannot see Asha
until the order reaches it; it accepts the Task, finds her by UHID, uploads the report (a PDF Binary
and a result) and completes the Task with it; the hospital and Asha are notified and read the report
and its PDF; the demo clinic, which is no party to the order, sees none of it.
"""
from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from tests.subscriptions._world import Receiver, status_of

from .test_story_booking import _client_token, _user_token

TOPIC = "https://medport.health/fhir/SubscriptionTopic/"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
HOSPITAL, LAB = "Organization/demo-hospital", "Organization/demo-deccan-diagnostics"
CBC = {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel - Blood by Automated count"}]}
PDF = b"%PDF-1.4\n% a blood report\n" + bytes(range(256)) * 64


def _events(receiver: Receiver, path: str) -> list[dict]:
    """The notification events ({name: value}) of the event notifications received on path, in order."""
    statuses = [status_of(body) for p, _headers, body in receiver.received if p == path]
    return [e for status in statuses if status["type"] == "event-notification" for e in status["notification-event"]]


def _wait(receiver: Receiver, path: str, n: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(_events(receiver, path)) < n:
        assert time.monotonic() < deadline, f"{path}: {len(_events(receiver, path))} of {n} notifications arrived"
        time.sleep(0.2)
    return _events(receiver, path)


def _focus(event: dict) -> str:
    return event["focus"]["reference"]


@pytest.fixture(scope="module")
def story(module_server_factory, tmp_path_factory):
    folder = tmp_path_factory.mktemp("story-orders")
    server = module_server_factory(str(folder / "store.db"), auth="on", demo=True,
                                   env={"MEDPORT_SUBSCRIPTION_ALLOW_HTTP_LOOPBACK": "on", "MEDPORT_WORKER_POLL_S": "0.2"})
    with open(folder / "demo-credentials.json") as f:
        creds = json.load(f)
    receiver = Receiver()
    yield server, creds, receiver
    receiver.close()


def _call(server, token: str, method: str, path: str, body=None, **headers) -> requests.Response:
    return requests.request(method, f"{server.base}/{path}", timeout=30, data=None if body is None else json.dumps(body),
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json",
                                     **headers})


def _subscribe(server, token: str, receiver: Receiver, path: str, topic: str, criteria: str) -> str:
    sub = {"resourceType": "Subscription", "status": "requested", "reason": f"story: {topic}",
           "criteria": TOPIC + topic,
           "_criteria": {"extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": criteria}]},
           "channel": {"type": "rest-hook", "endpoint": f"http://127.0.0.1:{receiver.port}{path}",
                       "payload": "application/fhir+json",
                       "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": "id-only"}]},
                       "header": [f"X-Story: {path}"]}}
    r = _call(server, token, "POST", "Subscription", sub)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    deadline = time.monotonic() + 60
    while _call(server, token, "GET", f"Subscription/{sid}").json()["status"] != "active":   # the handshake
        assert time.monotonic() < deadline, "the subscription did not become active"
        time.sleep(0.2)
    return sid


def _ids(server, token: str, query: str) -> set[str]:
    r = _call(server, token, "GET", query)
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", ()) if e.get("search", {}).get("mode") != "outcome"}


def test_a_doctor_orders_a_blood_test_at_another_towns_lab_and_everyone_is_told(story):
    server, creds, receiver = story
    hospital = _client_token(server, creds, "backend", "system/*.cruds")
    lab = _client_token(server, creds, "lab", "system/*.cruds")
    clinic = _client_token(server, creds, "clinic", "system/*.rs")
    asha = _user_token(server, creds, "asha")["access_token"]
    uhid = creds["uhid"]

    # before any order the laboratory knows nothing of Asha, not even by her UHID
    assert _ids(server, lab, f"Patient?identifier={uhid}") == set()
    _subscribe(server, lab, receiver, "/lab", "task-status-changed", f"Task?owner={LAB}")
    _subscribe(server, hospital, receiver, "/hospital", "diagnostic-report-final", f"DiagnosticReport?performer={LAB}")
    _subscribe(server, asha, receiver, "/asha", "diagnostic-report-final", "DiagnosticReport?patient=Patient/demo-patient")

    # the doctor places the order and sends it to the laboratory, in one transaction
    order = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000001",
         "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": CBC,
                      "subject": {"reference": "Patient/demo-patient"},
                      "requester": {"reference": "Practitioner/demo-doctor"}, "performer": [{"reference": LAB}]},
         "request": {"method": "POST", "url": "ServiceRequest"}},
        {"resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                      "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
                      "focus": {"reference": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000001"},
                      "for": {"reference": "Patient/demo-patient"}, "requester": {"reference": HOSPITAL},
                      "owner": {"reference": LAB}},
         "request": {"method": "POST", "url": "Task"}}]}
    r = _call(server, hospital, "POST", "", order)
    assert r.status_code == 200, r.text
    sr_id, task_id = (e["response"]["location"].split("/")[1] for e in r.json()["entry"])

    # the laboratory is told (id only), reads the Task and its order, and accepts it
    assert _focus(_wait(receiver, "/lab", 1)[0]).endswith(f"Task/{task_id}")
    task = _call(server, lab, "GET", f"Task/{task_id}").json()
    assert _call(server, lab, "GET", f"ServiceRequest/{sr_id}").status_code == 200
    for status in ("accepted", "in-progress"):
        task["status"] = status
        r = _call(server, lab, "PUT", f"Task/{task_id}", task)
        assert r.status_code == 200, r.text
        task = r.json()
    # an order cannot be completed without what it produced
    task["status"] = "completed"
    assert _call(server, lab, "PUT", f"Task/{task_id}", task).status_code in (400, 409, 422)

    # it finds Asha by her UHID (she is the patient of an open order addressed to it)
    assert _ids(server, lab, f"Patient?identifier={uhid}") == {"demo-patient"}

    # the report, filed by UHID (a conditional reference): the PDF as a Binary, a result, the
    # DiagnosticReport, and the completed Task, at once
    by_uhid = f"Patient?identifier={uhid}"
    upload = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "securityContext": {"reference": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000004"},
                      "data": base64.b64encode(PDF).decode()},
         "request": {"method": "POST", "url": "Binary"}},
        {"fullUrl": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000003",
         "resource": {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
                      "subject": {"reference": by_uhid}, "basedOn": [{"reference": f"ServiceRequest/{sr_id}"}],
                      "valueQuantity": {"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000004",
         "resource": {"resourceType": "DiagnosticReport", "status": "final", "code": CBC,
                      "subject": {"reference": by_uhid}, "basedOn": [{"reference": f"ServiceRequest/{sr_id}"}],
                      "performer": [{"reference": LAB}],
                      "result": [{"reference": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000003"}],
                      "presentedForm": [{"contentType": "application/pdf", "title": "CBC report",
                                         "url": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000002"}]},
         "request": {"method": "POST", "url": "DiagnosticReport"}},
        {"resource": {**task, "status": "completed",
                      "output": [{"type": {"text": "report"},
                                  "valueReference": {"reference": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000004"}}]},
         "request": {"method": "PUT", "url": f"Task/{task_id}"}}]}
    r = _call(server, lab, "POST", "", upload)
    assert r.status_code == 200, r.text
    report_id = r.json()["entry"][2]["response"]["location"].split("/")[1]

    # the doctor and Asha are told; the order completed with its Task
    assert _focus(_wait(receiver, "/hospital", 1)[0]).endswith(f"DiagnosticReport/{report_id}")
    assert _focus(_wait(receiver, "/asha", 1)[0]).endswith(f"DiagnosticReport/{report_id}")
    assert all(h["X-Story"] == path for path in ("/lab", "/hospital", "/asha") for p, h, _b in receiver.received if p == path)
    assert _call(server, hospital, "GET", f"ServiceRequest/{sr_id}").json()["status"] == "completed"

    # both read the report and its PDF
    for token in (hospital, asha):
        report = _call(server, token, "GET", f"DiagnosticReport/{report_id}")
        assert report.status_code == 200, report.text
        pdf_ref = report.json()["presentedForm"][0]["url"]
        pdf = _call(server, token, "GET", pdf_ref, Accept="application/pdf")
        assert pdf.status_code == 200 and pdf.content == PDF

    # the order is closed: the laboratory no longer sees Asha; the clinic never saw any of it
    assert _ids(server, lab, f"Patient?identifier={uhid}") == set()
    for query in (f"ServiceRequest?_id={sr_id}", f"Task?_id={task_id}", f"DiagnosticReport?_id={report_id}",
                  "Subscription"):
        assert _ids(server, clinic, query) == set(), query
