"""Helpers of the order tests: the hospitals' World of tests/governance/test_addressed.py (A places, lab B
owns, C is a third hospital; patient p1 with a token) with the writes the order tests repeat."""
from __future__ import annotations

from tests.governance.test_addressed import Orders, task

__all__ = ["Orders", "task", "report", "output", "reason", "set_status"]


def report(w, token, sr: str, patient: str) -> str:
    return w.create(token, {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
                            "subject": {"reference": f"Patient/{patient}"},
                            "basedOn": [{"reference": f"ServiceRequest/{sr}"}]})


def output(reference: str) -> list:
    return [{"type": {"text": "result"}, "valueReference": {"reference": reference}}]


def reason(text: str = "not possible") -> dict:
    return {"text": text}


def set_status(w, token, task_id: str, status: str, **fields):
    """PUT the stored Task with a new status (and fields) as token; the response."""
    stored = w.send(w.exchange, "GET", f"/fhir/Task/{task_id}").get_json()
    return w.send(token, "PUT", f"/fhir/Task/{task_id}", {**stored, "status": status, **fields})
