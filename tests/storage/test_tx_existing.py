"""Transaction.existing (storage/base.py): the ids read() finds, in one query, on SQLite and MongoDB
(the `backend` fixture); each store's answer is the base class's read() of every id."""
from __future__ import annotations

from fhirserver.storage import open_store
from fhirserver.storage.base import Transaction, Write


def write(tx, rtype, id, version, method="PUT"):
    body = None if method == "DELETE" else f'{{"resourceType":"{rtype}"}}'.encode()
    tx.write(Write(rtype, id, version, f"2026-01-01T00:00:0{version}.000000Z", method, body, {}))


def test_existing_is_what_read_finds(settings):
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            write(tx, "AuditEvent", "a", 1)
        with store.transaction() as tx:
            write(tx, "Patient", "p", 1)
        with store.transaction() as tx:
            write(tx, "Patient", "gone", 1)
        with store.transaction() as tx:
            write(tx, "Patient", "gone", 2, "DELETE")
        many = [f"n{i}" for i in range(1200)] + ["a", "p", "gone", "a"]      # more than one query's worth
        with store.transaction() as tx:
            assert tx.existing("AuditEvent", many) == {"a"}
            assert tx.existing("Patient", many) == {"p", "gone"}               # a delete is a current version
            assert tx.existing("Patient", []) == set()
            for rtype in ("AuditEvent", "Patient", "Observation"):
                assert tx.existing(rtype, many) == Transaction.existing(tx, rtype, many)
    finally:
        store.close()


def test_existing_sees_the_transactions_own_writes(settings):
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            write(tx, "AuditEvent", "new", 1)
            assert tx.existing("AuditEvent", ["new", "other"]) == {"new"}
    finally:
        store.close()
