"""A transient store conflict (a MongoDB write conflict or election) reruns the whole request."""
from __future__ import annotations

import pytest

from fhirserver.errors import StoreRetry
from fhirserver.resources import retry
from tests._faults import failing_once


@pytest.fixture
def flaky(app):
    calls = {"n": 0, "fail": 0}

    @app.route("/fhir/$flaky-test", methods=["POST"])
    def flaky_view():
        calls["n"] += 1
        if calls["n"] <= calls["fail"]:
            raise StoreRetry("write conflict")
        return {"attempts": calls["n"]}
    return calls


def test_transient_conflicts_are_retried(client, flaky):
    flaky["fail"] = retry.ATTEMPTS - 1
    r = client.post("/fhir/$flaky-test")
    assert r.status_code == 200 and r.json == {"attempts": retry.ATTEMPTS}


def test_a_lasting_conflict_answers_503_with_retry_after(client, flaky):
    flaky["fail"] = 100
    r = client.post("/fhir/$flaky-test")
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json["resourceType"] == "OperationOutcome" and flaky["n"] == retry.ATTEMPTS


def test_a_rerun_request_reads_the_same_body(client, ctx, monkeypatch):
    """Found in review: the rerun read an exhausted body stream and answered 400 Malformed JSON."""
    from fhirserver.interactions import common
    conflict_once = failing_once(common.store_new_version, StoreRetry("write conflict"))
    monkeypatch.setattr("fhirserver.interactions.create.store_new_version", conflict_once)
    r = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "other"},
                    headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201 and r.json["gender"] == "other" and conflict_once.calls == 2
