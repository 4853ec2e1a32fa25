"""Records addressed to an organisation (governance/addressed.py), on both stores: hospital A orders a
test at lab B; B sees the order, its Task and, while the Task is open, the Patient, and nothing else of
the chart; B's report based on A's order goes back to A; B progresses the Task without taking it into
its custody; B changes nothing else of A's; a third hospital sees none of it."""
from __future__ import annotations

import pytest

from fhirserver.governance import custodian
from tests.conftest import STORES
from tests.governance.test_policy import A, B, World
from tests.smart_auth._tokens import mint

C = "Organization/hosp-c"


class Orders(World):
    def __init__(self, tmp_path, backend):
        super().__init__(tmp_path, backend)
        self.c = mint(self.app, "system/*.cruds", client_id="hosp-c-ehr", organization=C)
        self.sr = self.create(self.a, {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                       "code": {"text": "CBC"}, "subject": {"reference": f"Patient/{self.p1}"}})
        self.task = self.create(self.a, task(self.sr, self.p1, "requested"))


def task(sr: str, patient: str, status: str, owner: str = B) -> dict:
    return {"resourceType": "Task", "status": status, "intent": "order", "code": {"text": "fulfill"},
            "focus": {"reference": f"ServiceRequest/{sr}"}, "for": {"reference": f"Patient/{patient}"},
            "requester": {"reference": A}, "owner": {"reference": owner}}


def lab_report(w) -> tuple[str, str]:
    """The lab's result and report on A's order: (Observation id, DiagnosticReport id)."""
    about = {"subject": {"reference": f"Patient/{w.p1}"}, "basedOn": [{"reference": f"ServiceRequest/{w.sr}"}]}
    result = w.create(w.b, {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"}, **about})
    report = w.create(w.b, {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
                            "result": [{"reference": f"Observation/{result}"}], **about})
    return result, report


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Orders(tmp_path, request.param)


def test_the_fulfiller_sees_the_order_its_task_and_the_patient_only(w):
    assert w.ids(w.b, "Task")[1] == {w.task}
    assert w.ids(w.b, "ServiceRequest")[1] == {w.sr}
    assert w.ids(w.b, "Patient")[1] == {w.p1}
    assert w.ids(w.b, "Observation")[1] == set()           # the rest of the chart stays A's
    assert w.ids(w.b, "Condition")[1] == set()
    for token in (w.c,):
        for rtype in ("Task", "ServiceRequest", "Patient"):
            assert w.ids(token, rtype)[1] == set()
    assert w.send(w.c, "GET", f"/fhir/Task/{w.task}").status_code == 404


def test_the_owner_progresses_the_task_and_the_placer_keeps_custody(w):
    stored = w.send(w.b, "GET", f"/fhir/Task/{w.task}").get_json()
    stored["status"] = "accepted"
    r = w.send(w.b, "PUT", f"/fhir/Task/{w.task}", stored)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert custodian.of(r.get_json()) == A
    assert w.ids(w.a, "Task")[1] == {w.task}
    # giving the Task away is the placer's decision, not the owner's
    stored = r.get_json()
    stored["owner"] = {"reference": C}
    assert w.send(w.b, "PUT", f"/fhir/Task/{w.task}", stored).status_code == 403
    # the order itself is the placer's alone
    order = w.send(w.b, "GET", f"/fhir/ServiceRequest/{w.sr}").get_json()
    order["status"] = "completed"
    assert w.send(w.b, "PUT", f"/fhir/ServiceRequest/{w.sr}", order).status_code == 403
    assert w.send(w.b, "DELETE", f"/fhir/Task/{w.task}").status_code == 403


def test_the_result_goes_back_to_the_placer_and_a_closed_task_hides_the_patient(w):
    _result, report = lab_report(w)
    assert w.ids(w.a, "DiagnosticReport")[1] == {report}
    assert w.ids(w.c, "DiagnosticReport")[1] == set()
    for status in ("accepted", "in-progress", "completed"):     # the Task's legal path (orders/task_states.py)
        stored = w.send(w.b, "GET", f"/fhir/Task/{w.task}").get_json()
        stored["status"] = status
        stored["output"] = [{"type": {"text": "report"}, "valueReference": {"reference": f"DiagnosticReport/{report}"}}]
        assert w.send(w.b, "PUT", f"/fhir/Task/{w.task}", stored).status_code == 200
    assert w.ids(w.b, "Patient")[1] == set()
    assert w.ids(w.b, "Task")[1] == {w.task}
    assert w.ids(w.b, "DiagnosticReport")[1] == {report}


@pytest.mark.parametrize("backend", [s for s in STORES if s == "mongo"])
def test_reads_by_id_stay_exact_past_the_mongodb_linked_ids_limit(tmp_path, backend, monkeypatch):
    """On MongoDB a chain or _has hands on at most MAX_LINKED ids (storage/mongo_query.py); the access
    rules that are chains (a result based on the reader's order, a Binary's context, the Patient of a
    lab's open Task) start from the resource read instead, so a read by id is exact however many
    records the reader holds (docs/storage-mongodb.md); a search over all of them still asks to be
    narrowed."""
    from fhirserver.storage import mongo_query
    w = Orders(tmp_path, backend)
    for n in range(3):                     # more ServiceRequests than the (lowered) limit
        w.create(w.a, {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                       "code": {"text": f"test {n}"}, "subject": {"reference": f"Patient/{w.p1}"}})
        w.create(w.a, task(w.sr, w.p1, "requested"))
    result, report = lab_report(w)
    pdf = w.create(w.b, {"resourceType": "Binary", "contentType": "application/pdf",
                         "securityContext": {"reference": f"DiagnosticReport/{report}"}})
    monkeypatch.setattr(mongo_query, "MAX_LINKED", 2)
    assert w.send(w.a, "GET", f"/fhir/DiagnosticReport/{report}").status_code == 200
    assert w.send(w.a, "GET", f"/fhir/Binary/{pdf}", ).status_code == 200
    assert w.send(w.b, "GET", f"/fhir/Patient/{w.p1}").status_code == 200      # the lab's open Tasks
    assert w.ids(w.a, f"DiagnosticReport?_id={report}")[1] == {report}
    assert w.send(w.a, "GET", f"/fhir/DiagnosticReport/{report}/_history").status_code == 200
    included = w.send(w.a, "GET", f"/fhir/DiagnosticReport?_id={report}&_include=DiagnosticReport:result").get_json()
    assert {e["resource"]["id"] for e in included["entry"]} == {report, result}
    assert w.send(w.c, "GET", f"/fhir/DiagnosticReport/{report}").status_code == 404
    assert w.send(w.c, "GET", f"/fhir/Binary/{pdf}").status_code == 404
    assert w.ids(w.a, f"DiagnosticReport?subject=Patient/{w.p1}")[1] == {report}    # few matches: exact
    assert w.send(w.a, "GET", "/fhir/DiagnosticReport").status_code == 400     # all of them: narrow it
