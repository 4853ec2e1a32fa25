"""The order rules on every write path (fhirserver/orders/), on both stores: completion needs output and
rejection a reason; the owner changes only the performer's fields; a new Task starts at the start; PATCH
and transaction entries obey the same state machine; a completed Task completes its request in the same
transaction (a failing unit stores neither); revoking a request cancels its open Tasks or, while work has
started, is refused naming the Task; a patient chooses the owner of a patient-mediated Task once."""
from __future__ import annotations

import pytest

from fhirserver.errors import StoreUnavailable
from fhirserver.governance import custodian, provenance
from tests._faults import failing_once
from tests.conftest import STORES
from tests.governance.test_policy import A, B
from tests.orders._orders import Orders, output, reason, report, set_status, task


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Orders(tmp_path, request.param)


def read(w, key: str) -> dict:
    return w.send(w.exchange, "GET", f"/fhir/{key}").get_json()


def walk(w, tid: str, *statuses: str, **fields):
    for status in statuses:
        r = set_status(w, w.b, tid, status, **fields)
        assert r.status_code == 200, r.get_data(as_text=True)
    return r


def test_completion_needs_output_and_rejection_a_reason(w):
    walk(w, w.task, "accepted", "in-progress")
    r = set_status(w, w.b, w.task, "completed")
    assert r.status_code == 422 and "Task.output" in r.get_data(as_text=True)
    other = w.create(w.a, task(w.sr, w.p1, "requested"))
    r = set_status(w, w.b, other, "rejected")
    assert r.status_code == 422 and "statusReason" in r.get_data(as_text=True)
    assert set_status(w, w.b, other, "rejected", statusReason=reason("no reagent")).status_code == 200


def test_the_owner_changes_only_the_performers_fields(w):
    r = set_status(w, w.b, w.task, "received", note=[{"text": "sample due"}], businessStatus={"text": "booked"})
    assert r.status_code == 200, r.get_data(as_text=True)
    for field, value in (("focus", {"reference": "ServiceRequest/other"}), ("for", {"reference": f"Patient/{w.p2}"}),
                         ("requester", {"reference": B}), ("intent", "plan"), ("code", {"text": "other"}),
                         ("priority", "stat"),
                         ("text", {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Cancelled</div>'})):
        r = set_status(w, w.b, w.task, "received", **{field: value})
        assert r.status_code == 403, (field, r.get_data(as_text=True))
    assert read(w, f"Task/{w.task}")["intent"] == "order"


def test_a_new_task_starts_as_draft_requested_or_ready(w):
    for status in ("draft", "requested", "ready"):
        w.create(w.a, task(w.sr, w.p1, status))
    body = {**task(w.sr, w.p1, "completed"), "output": output("DiagnosticReport/x")}
    r = w.send(w.a, "POST", "/fhir/Task", body)
    assert r.status_code == 400 and "starts as" in r.get_data(as_text=True)


def test_patch_and_transaction_entries_obey_the_state_machine(w):
    patch = [{"op": "replace", "path": "/status", "value": "in-progress"}]
    r = w.client.patch(f"/fhir/Task/{w.task}", json=patch,
                       headers={"Authorization": f"Bearer {w.b}", "Content-Type": "application/json-patch+json"})
    assert r.status_code == 400 and "requested -> in-progress" in r.get_data(as_text=True)
    stored = read(w, f"Task/{w.task}")
    note = {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
            "subject": {"reference": f"Patient/{w.p1}"}}
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": note, "request": {"method": "POST", "url": "Observation"}},
            {"resource": {**stored, "status": "completed", "output": output("DiagnosticReport/x")},
             "request": {"method": "PUT", "url": f"Task/{w.task}"}}]}
        r = w.send(w.b, "POST", "/fhir", bundle)
        text = r.get_data(as_text=True)
        if kind == "transaction":
            assert r.status_code == 400 and "requested -> completed" in text, text
        else:
            assert r.status_code == 200, text
            statuses = [e["response"]["status"] for e in r.get_json()["entry"]]
            assert statuses[0].startswith("201") and statuses[1].startswith("400"), statuses
    assert read(w, f"Task/{w.task}")["status"] == "requested"


def test_the_request_completes_with_its_task_in_the_same_transaction(w):
    rid = report(w, w.b, w.sr, w.p1)
    walk(w, w.task, "accepted", "in-progress")
    r = walk(w, w.task, "completed", output=output(f"DiagnosticReport/{rid}"))
    assert custodian.of(r.get_json()) == A
    order = w.send(w.a, "GET", f"/fhir/ServiceRequest/{w.sr}").get_json()
    assert order["status"] == "completed" and custodian.of(order) == A
    task_stamp, order_stamp = r.get_json()["meta"]["lastUpdated"], order["meta"]["lastUpdated"]
    assert order_stamp <= task_stamp
    # one Provenance records both versions of the unit
    found = w.send(w.exchange, "GET", f"/fhir/Provenance?target=ServiceRequest/{w.sr}/_history/2").get_json()
    targets = {t["reference"] for e in found["entry"] for t in e["resource"]["target"]}
    assert f"Task/{w.task}/_history/4" in targets


def test_a_failing_unit_stores_neither_the_task_nor_the_request(w, monkeypatch):
    walk(w, w.task, "accepted", "in-progress")
    monkeypatch.setattr(provenance, "_write", failing_once(provenance._write, StoreUnavailable("injected")))
    r = set_status(w, w.b, w.task, "completed", output=output("DiagnosticReport/x"))
    assert r.status_code == 503, r.get_data(as_text=True)
    assert read(w, f"Task/{w.task}")["status"] == "in-progress"
    assert read(w, f"ServiceRequest/{w.sr}")["status"] == "active"
    assert set_status(w, w.b, w.task, "completed", output=output("DiagnosticReport/x")).status_code == 200
    assert read(w, f"ServiceRequest/{w.sr}")["status"] == "completed"


def test_revoking_the_request_cancels_its_open_tasks(w):
    second = w.create(w.a, task(w.sr, w.p1, "requested"))
    walk(w, second, "accepted")
    closed = w.create(w.a, task(w.sr, w.p1, "requested"))
    walk(w, closed, "rejected", statusReason=reason())
    order = read(w, f"ServiceRequest/{w.sr}")
    assert w.send(w.b, "PUT", f"/fhir/ServiceRequest/{w.sr}", {**order, "status": "revoked"}).status_code == 403
    r = w.send(w.a, "PUT", f"/fhir/ServiceRequest/{w.sr}", {**order, "status": "revoked"})
    assert r.status_code == 200, r.get_data(as_text=True)
    for tid in (w.task, second):
        cancelled = read(w, f"Task/{tid}")
        assert cancelled["status"] == "cancelled" and "revoked" in cancelled["statusReason"]["text"]
        assert custodian.of(cancelled) == A
    assert read(w, f"Task/{closed}")["status"] == "rejected"
    assert w.ids(w.b, "Patient")[1] == set()                 # nothing open: the lab no longer sees the patient


def test_a_revoke_while_work_has_started_is_refused_naming_the_task(w):
    walk(w, w.task, "accepted", "in-progress")
    order = read(w, f"ServiceRequest/{w.sr}")
    r = w.send(w.a, "PUT", f"/fhir/ServiceRequest/{w.sr}", {**order, "status": "revoked"})
    assert r.status_code == 409 and f"Task/{w.task} (in-progress)" in r.get_data(as_text=True)
    assert read(w, f"ServiceRequest/{w.sr}")["status"] == "active"
    r = w.send(w.a, "DELETE", f"/fhir/ServiceRequest/{w.sr}")
    assert r.status_code == 409
    walk(w, w.task, "failed", statusReason=reason("sample haemolysed"))
    assert w.send(w.a, "DELETE", f"/fhir/ServiceRequest/{w.sr}").status_code == 204


def test_deleting_the_request_cancels_its_open_tasks(w):
    assert w.send(w.a, "DELETE", f"/fhir/ServiceRequest/{w.sr}").status_code == 204
    assert read(w, f"Task/{w.task}")["status"] == "cancelled"


def test_the_patient_chooses_the_owner_once(w):
    assert set_status(w, w.a, w.task, "cancelled").status_code == 200      # A's first choice, withdrawn
    body = {k: v for k, v in task(w.sr, w.p1, "requested").items() if k != "owner"}
    tid = w.create(w.a, body)
    assert w.ids(w.b, "Patient")[1] == set()
    r = w.send(w.p1_token, "POST", "/fhir/Task", body)
    assert r.status_code == 403                               # the placer places, the patient chooses
    stored = w.send(w.p1_token, "GET", f"/fhir/Task/{tid}").get_json()
    for change in ({"status": "cancelled"}, {"owner": {"reference": B}, "priority": "urgent"},
                   {"owner": {"reference": f"Patient/{w.p1}"}},
                   {"owner": {"reference": B}, "text": {"status": "generated",
                                                        "div": '<div xmlns="http://www.w3.org/1999/xhtml">Done</div>'}}):
        assert w.send(w.p1_token, "PUT", f"/fhir/Task/{tid}", {**stored, **change}).status_code in (403, 422), change
    r = w.send(w.p1_token, "PUT", f"/fhir/Task/{tid}", {**stored, "owner": {"reference": B}})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert custodian.of(r.get_json()) == A                    # still the placer's
    assert w.ids(w.b, "Patient")[1] == {w.p1} and tid in w.ids(w.b, "Task")[1]
    again = {**r.get_json(), "owner": {"reference": "Organization/hosp-c"}}
    assert w.send(w.p1_token, "PUT", f"/fhir/Task/{tid}", again).status_code == 403
    assert walk(w, tid, "accepted").status_code == 200


def test_the_placer_reassigns_until_work_starts(w):
    stored = read(w, f"Task/{w.task}")
    r = w.send(w.a, "PUT", f"/fhir/Task/{w.task}", {**stored, "owner": {"reference": "Organization/hosp-c"}})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert w.ids(w.c, "Patient")[1] == {w.p1} and w.ids(w.b, "Patient")[1] == set()
    r = w.send(w.a, "PUT", f"/fhir/Task/{w.task}", {**r.get_json(), "owner": {"reference": B}})
    walk(w, w.task, "accepted", "in-progress")
    stored = read(w, f"Task/{w.task}")
    r = w.send(w.a, "PUT", f"/fhir/Task/{w.task}", {**stored, "owner": {"reference": "Organization/hosp-c"}})
    assert r.status_code == 422


def test_the_patient_does_not_delete_a_task(w):
    assert w.send(w.p1_token, "DELETE", f"/fhir/Task/{w.task}").status_code == 403
    assert read(w, f"Task/{w.task}")["status"] == "requested"
    assert w.ids(w.b, "Patient")[1] == {w.p1}


def test_the_owner_of_a_task_no_organisation_holds_does_not_take_it_over(w):
    """A Task the server placed without a custodian (MEDPORT_DEFAULT_CUSTODIAN empty) stays unheld when
    its owner progresses it: the owner does not become its placer."""
    r = w.send(w.exchange, "POST", "/fhir/Task", task(w.sr, w.p1, "requested"))
    tid = r.get_json()["id"]
    assert custodian.of(r.get_json()) is None
    r = set_status(w, w.b, tid, "accepted")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert custodian.of(r.get_json()) is None
    r = set_status(w, w.b, tid, "accepted", requester={"reference": B}, priority="stat")
    assert r.status_code == 403, r.get_data(as_text=True)
    assert w.send(w.b, "DELETE", f"/fhir/Task/{tid}").status_code == 403
