"""The lab's results reach the placer and no one else, on both stores: the report's attachment (a PDF, a
large image set) is a Binary whose securityContext is the DiagnosticReport (binary.html#security;
governance/addressed.py), readable by the placer, not by a third hospital; the lab finds the patient by
UHID while its Task is open, and writes the report in a transaction with a conditional reference."""
from __future__ import annotations

import base64

import pytest

from tests._uhid import TEST_SYSTEM, uhid_in
from tests.conftest import STORES
from tests.orders._orders import Orders, output, report, set_status

PDF = b"%PDF-1.4 CBC report: Hb 13.2 g/dL"


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Orders(tmp_path, request.param)


def binary(context: str) -> dict:
    return {"resourceType": "Binary", "contentType": "application/pdf", "securityContext": {"reference": context},
            "data": base64.b64encode(PDF).decode()}


def test_the_placer_reads_the_reports_binary_and_a_third_hospital_does_not(w):
    rid = report(w, w.b, w.sr, w.p1)
    pdf = w.create(w.b, binary(f"DiagnosticReport/{rid}"))
    stored = w.send(w.b, "GET", f"/fhir/DiagnosticReport/{rid}").get_json()
    stored["presentedForm"] = [{"contentType": "application/pdf", "url": f"Binary/{pdf}"}]
    assert w.send(w.b, "PUT", f"/fhir/DiagnosticReport/{rid}", stored).status_code == 200
    r = w.client.get(f"/fhir/Binary/{pdf}", headers={"Authorization": f"Bearer {w.a}", "Accept": "application/pdf"})
    assert r.status_code == 200 and r.get_data() == PDF
    assert w.send(w.c, "GET", f"/fhir/Binary/{pdf}").status_code == 404
    assert w.send(w.c, "GET", f"/fhir/DiagnosticReport/{rid}").status_code == 404
    # a Binary whose context is not a result of A's order stays the lab's
    own = w.create(w.b, binary(f"Patient/{w.p1}"))
    assert w.send(w.a, "GET", f"/fhir/Binary/{own}").status_code == 404
    assert w.send(w.b, "GET", f"/fhir/Binary/{own}").status_code == 200


def test_the_lab_finds_the_patient_by_uhid_while_its_task_is_open(w):
    uhid = uhid_in(w.send(w.a, "GET", f"/fhir/Patient/{w.p1}").get_json())
    query = f"Patient?identifier={TEST_SYSTEM}|{uhid}"
    assert w.ids(w.b, query)[1] == {w.p1}
    assert w.ids(w.c, query)[1] == set()
    entry = {"fullUrl": "urn:uuid:6a1c1d3e-5f7a-4c1e-9d8a-2b3c4d5e6f70",
             "resource": {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
                          "subject": {"reference": query}, "basedOn": [{"reference": f"ServiceRequest/{w.sr}"}]},
             "request": {"method": "POST", "url": "DiagnosticReport"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    r = w.send(w.b, "POST", "/fhir", bundle)
    assert r.status_code == 200, r.get_data(as_text=True)
    rid = r.get_json()["entry"][0]["response"]["location"].split("/")[1]
    assert w.send(w.a, "GET", f"/fhir/DiagnosticReport/{rid}").get_json()["subject"] == {"reference": f"Patient/{w.p1}"}
    assert w.send(w.c, "POST", "/fhir", bundle).status_code in (400, 404, 412, 422)     # C resolves no one
    for status in ("accepted", "in-progress", "completed"):
        assert set_status(w, w.b, w.task, status, output=output(f"DiagnosticReport/{rid}")).status_code == 200
    assert w.ids(w.b, query)[1] == set()                      # closed: the lab no longer finds the patient
    assert w.ids(w.a, "DiagnosticReport")[1] == {rid}


def test_a_file_in_the_tasks_output_follows_the_task(w):
    """A Binary whose securityContext is the Task (say, a CT image set the lab puts in Task.output) is
    readable by the Task's placer and owner, not by a third hospital."""
    scan = w.create(w.b, {**binary(f"Task/{w.task}"), "contentType": "application/dicom"})
    for status in ("accepted", "in-progress", "completed"):
        assert set_status(w, w.b, w.task, status, output=output(f"Binary/{scan}")).status_code == 200
    for token, seen in ((w.a, 200), (w.b, 200), (w.c, 404)):
        assert w.send(token, "GET", f"/fhir/Binary/{scan}").status_code == seen


def test_the_lab_finds_its_work_with_the_order_and_the_patient(w):
    """The query docs/orders.md gives the lab: its requested Tasks with their orders and patients."""
    query = "/fhir/Task?owner=Organization/hosp-b&status=requested&_include=Task:focus&_include=Task:patient"
    for token, expected in ((w.b, {f"Task/{w.task}", f"ServiceRequest/{w.sr}", f"Patient/{w.p1}"}), (w.c, set())):
        body = w.send(token, "GET", query).get_json()
        assert {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body.get("entry", ())} == expected


def test_the_patient_reads_the_pdf_of_her_report_and_her_own_files_only(w):
    """A Binary follows its securityContext for a patient too (governance/binary_context.py): the PDF of
    her report and a file filed against her Patient are hers; another patient's are not."""
    rid = report(w, w.b, w.sr, w.p1)
    pdf = w.create(w.b, binary(f"DiagnosticReport/{rid}"))
    own = w.create(w.b, binary(f"Patient/{w.p1}"))
    other = w.create(w.a, binary(f"Patient/{w.p2}"))
    r = w.client.get(f"/fhir/Binary/{pdf}", headers={"Authorization": f"Bearer {w.p1_token}", "Accept": "application/pdf"})
    assert r.status_code == 200 and r.get_data() == PDF
    assert w.ids(w.p1_token, "Binary")[1] == {pdf, own}
    assert w.send(w.p1_token, "GET", f"/fhir/Binary/{other}").status_code == 404
    assert len(w.send(w.p1_token, "GET", f"/fhir/Binary/{own}/_history").get_json()["entry"]) == 1
