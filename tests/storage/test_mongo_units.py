"""The seam between the MongoDB store and transactions (storage/mongo_units.py).

mongomock has no sessions, so the session path is exercised here against a stand-in client
that behaves like pymongo's (errors with labels, abort, commit); the standalone path runs on
mongomock with the store told it talks to a single mongod.
"""
from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure, PyMongoError

from fhirserver.errors import BadRequest
from fhirserver.storage import open_store
from fhirserver.storage.base import Write
from fhirserver.storage.mongo_units import SessionUnit, StandaloneUnit, StandaloneUnits, StoreRetry
from tests.conftest import make_settings


def labelled(label: str) -> PyMongoError:
    e = PyMongoError("boom")
    e._error_labels = {label}
    return e


class FakeSession:
    def __init__(self, commit_errors=()):
        self.commit_errors = list(commit_errors)
        self.in_transaction = False
        self.calls = []

    def start_transaction(self, **kw):
        self.in_transaction = True
        self.calls.append(("start", kw["write_concern"].document, kw["read_concern"].level))

    def commit_transaction(self):
        self.calls.append("commit")
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.in_transaction = False

    def abort_transaction(self):
        self.calls.append("abort")
        self.in_transaction = False

    def end_session(self):
        self.calls.append("end")


class FakeClient:
    def __init__(self, session):
        self.session = session

    def start_session(self):
        return self.session


def test_commit_is_retried_while_its_outcome_is_unknown():
    session = FakeSession([labelled("UnknownTransactionCommitResult")] * 2)
    with SessionUnit(FakeClient(session)):
        pass
    assert session.calls == [("start", {"w": "majority"}, "snapshot"), "commit", "commit", "commit", "end"]


def test_a_transient_error_aborts_and_asks_for_a_rerun():
    session = FakeSession()
    with pytest.raises(StoreRetry):
        with SessionUnit(FakeClient(session)):
            raise labelled("TransientTransactionError")
    assert session.calls[-2:] == ["abort", "end"]
    session = FakeSession()
    with pytest.raises(StoreRetry):
        with SessionUnit(FakeClient(session)):
            raise OperationFailure("WriteConflict", code=112)
    session = FakeSession([labelled("TransientTransactionError")])
    with pytest.raises(StoreRetry):
        with SessionUnit(FakeClient(session)):
            pass


def test_other_errors_abort_and_pass_through():
    session = FakeSession()
    with pytest.raises(ValueError):
        with SessionUnit(FakeClient(session)):
            raise ValueError("a bug")
    assert session.calls[-2:] == ["abort", "end"]


def patient(id, version=1):
    return Write("Patient", id, version, "2026-01-01T00:00:00.000000Z", "PUT", b'{"resourceType":"Patient"}', {})


@pytest.fixture
def standalone(tmp_path):
    store = open_store(make_settings(tmp_path, "mongo"))
    store.units = StandaloneUnits()      # as if talking to a single mongod (open_mongo picks it from the topology)
    return store


def test_standalone_takes_single_writes(standalone):
    with standalone.transaction() as tx:
        tx.write(patient("a"))
    with standalone.transaction() as tx:
        tx.write(patient("a", 2))
    assert standalone.read("Patient", "a").version == 2 and standalone.history("Patient", "a").total == 2


def test_standalone_refuses_a_multi_resource_transaction_before_writing(standalone):
    with pytest.raises(BadRequest, match="replica set"):
        with standalone.transaction() as tx:
            tx.write(patient("a"))
            tx.write(patient("b"))
    assert standalone.read("Patient", "a") is None and standalone.history().total == 0


def test_standalone_unit_applies_nothing_on_error():
    unit, applied = StandaloneUnit(), []
    with pytest.raises(RuntimeError):
        with unit:
            unit.hold("Patient", "a", lambda: applied.append("a"))
            raise RuntimeError("refused")
    assert applied == []
