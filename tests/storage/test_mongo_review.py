"""Where a real MongoDB server would behave differently from mongomock (review of the MongoDB store).

Each test runs on mongomock but shows a request or a document the code sends that a real server
(6.0/7.0, standalone, replica set or sharded cluster as documented in docs/storage-mongodb.md)
would reject or answer differently, or a code path (StandaloneUnit) the mongomock runs never take.
"""
from __future__ import annotations

import bson
import pytest
from bson import ObjectId

from fhirserver import create_app
from fhirserver.errors import BadRequest
from fhirserver.search import query as q
from fhirserver.search.kinds import special_kind
from fhirserver.search.registry import all_params
from fhirserver.storage import open_store
from fhirserver.storage.base import Write
from fhirserver.storage.mongo_query import Compiler
from fhirserver.storage.mongo_units import StandaloneUnits
from tests.conftest import FHIR_JSON, make_settings

BSON_MAX = 16 * 1024 * 1024          # MongoDB's maximum document size (16 MiB)


@pytest.fixture
def mongo_settings(tmp_path):
    return make_settings(tmp_path, "mongo")


@pytest.fixture
def store(mongo_settings):
    s = open_store(mongo_settings)
    yield s
    s.close()


def _write(store, rtype, id, version, method="PUT", body=b"{}", index=None):
    with store.transaction() as tx:
        return tx.write(Write(rtype, id, version, f"2026-01-01T00:00:0{version}.000000Z", method,
                              None if method == "DELETE" else body, index or {}))


def _subject(patient_id):
    return {"reference": [("Observation.subject", 0, "Patient", patient_id, None)]}


# ---- 1. GET entries of a transaction Bundle run outside the unit of work ------------------------

def test_transaction_bundle_get_sees_the_bundles_writes_on_a_standalone_mongod(mongo_settings):
    """run_get (interactions/bundle_results.py) reads through ctx.store, not through the open
    transaction. On a real server the unit of work keeps the bundle's writes invisible to such
    reads until the end: StandaloneUnit holds them until __exit__, and a SessionUnit's writes are
    uncommitted and outside the session. mongomock's SerialUnit applies writes at once, so the
    suites (tests/resources/test_bundles.py::test_processing_order_and_every_method, the HL7
    transaction example) pass there and would fail on a real server. Here the real standalone
    path (what topology() answers for a single mongod) runs on mongomock's collections."""
    app = create_app(mongo_settings)
    store = app.config["MEDPORT"].store
    store.units = StandaloneUnits()     # the path a real standalone mongod takes
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "new", "active": True},
         "request": {"method": "PUT", "url": "Patient/new"}},
        {"request": {"method": "GET", "url": "Patient/new"}},
    ]}
    r = app.test_client().post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.json
    assert [e["response"]["status"] for e in r.json["entry"]] == ["201 Created", "200 OK"]
    assert r.json["entry"][1]["resource"]["active"] is True


# ---- 2. history order from client-side ObjectIds -----------------------------------------------

class _OtherProcess:
    """ObjectIds as another worker process (or another host) would make them in the same second:
    bson's ObjectId is (seconds, a random value per process, a counter), generated client-side."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def __call__(self, random5: bytes, second: int = 1_800_000_000):
        import bson.objectid as oid_module

        class _Clock:
            @staticmethod
            def time():
                return second + 0.5
        self.monkeypatch.setattr(ObjectId, "_random", classmethod(lambda cls: random5))
        self.monkeypatch.setattr(oid_module, "time", _Clock)


def test_instance_history_is_newest_first_when_workers_write_in_the_same_second(store, monkeypatch):
    """versions.seq is an ObjectId made by the writing process: across gunicorn workers (or hosts
    with a clock skew) it is not write order, yet history() sorts by it. Version 2, written after
    version 1 by another worker in the same second, is listed as older than version 1."""
    as_process = _OtherProcess(monkeypatch)
    as_process(b"\xff" * 5)
    _write(store, "Patient", "a", 1)
    as_process(b"\x00" * 5)
    _write(store, "Patient", "a", 2)
    assert [v.version for v in store.history("Patient", "a").items] == [2, 1]


# ---- 3. shard key changes without the full shard key in the filter ------------------------------

class _Recorder:
    """A stand-in for the resources collection that checks every single-document write against the
    sharding rule of MongoDB 6.0/7.0 (core/sharding-change-shard-key-value): a write that changes
    a document's shard key value ({pk: 1, _id: 1} per docs/storage-mongodb.md) must include an
    equality on the full shard key in its filter; without it mongos targets the replacement's new
    pk (matching nothing on another shard: a false 409) or the shard refuses it (error 31025)."""

    def __init__(self, collection):
        self._c = collection
        self.violations = []

    def __getattr__(self, name):
        return getattr(self._c, name)

    def _check(self, flt, new_pk):
        old = self._c.find_one(flt)
        if old is not None and new_pk is not None and old.get("pk") != new_pk and flt.get("pk") != old.get("pk"):
            self.violations.append((dict(flt), old.get("pk"), new_pk))

    def replace_one(self, flt, doc, *args, **kwargs):
        self._check(flt, doc.get("pk"))
        return self._c.replace_one(flt, doc, *args, **kwargs)

    def update_one(self, flt, update, *args, **kwargs):
        self._check(flt, (update.get("$set") or {}).get("pk"))
        return self._c.update_one(flt, update, *args, **kwargs)


def test_delete_of_a_compartment_resource_changes_the_shard_key_without_naming_it(store):
    _write(store, "Observation", "o1", 1, index=_subject("p1"))
    assert store.resources.find_one({"_id": "Observation/o1"})["pk"] == "Patient/p1"
    store.resources = rec = _Recorder(store.resources)
    _write(store, "Observation", "o1", 2, method="DELETE")
    assert rec.violations == []


def test_update_moving_a_resource_to_another_patient_names_the_old_shard_key(store):
    _write(store, "Observation", "o1", 1, index=_subject("p1"))
    store.resources = rec = _Recorder(store.resources)
    _write(store, "Observation", "o1", 2, index=_subject("p2"))
    assert rec.violations == []


def test_reindex_that_changes_the_partition_names_the_old_shard_key(store):
    _write(store, "Observation", "o1", 1, index=_subject("p1"))
    store.resources = rec = _Recorder(store.resources)
    assert store.reindex(lambda rtype, body: _subject("p2")) == 1
    assert rec.violations == []


# ---- 4. documents larger than BSON allows --------------------------------------------------------

def test_an_accepted_resource_fits_in_one_bson_document(mongo_settings):
    """A 3 MB request (the limit is max_body_bytes, 16 MiB; each string at most 1M characters)
    becomes a 21 MB resources document: every string is stored in the body and twice (folded,
    exact) per string parameter that indexes it (Patient.name, .family, .phonetic). pymongo
    refuses it before sending (DocumentTooLarge, not a PyMongoError): a 500 on a real server,
    a 201 on mongomock and SQLite."""
    app = create_app(mongo_settings)
    client = app.test_client()
    body = {"resourceType": "Patient", "id": "big", "name": [{"family": c * 1_000_000} for c in "xyz"]}
    r = client.put("/fhir/Patient/big", json=body, headers={"Content-Type": FHIR_JSON})
    if r.status_code >= 400:
        assert r.status_code in (400, 413, 422)      # refused as too large: fine
        return
    doc = app.config["MEDPORT"].store.resources.find_one({"_id": "Patient/big"})
    assert len(bson.encode(doc)) <= BSON_MAX


# ---- 5. near with a NaN distance -----------------------------------------------------------------

def test_near_never_sends_a_nan_radius_to_the_server(store):
    """special_kind.parse refuses a distance of 'nan' (400 naming near): a NaN radius reaching the
    server would be rejected there (a 503 instead of a 400). An infinite distance is the whole
    sphere: the filter is the kind's box alone, with no arithmetic on an infinite limit."""
    param = all_params()["Location"]["near"]
    with pytest.raises(BadRequest, match="near"):
        special_kind.parse(param, "", "42.25|-83.69|nan|km")
    cond = special_kind.parse(param, "", "42.25|-83.69|inf|km")
    flt = Compiler(store.resources).node("Location", q.Match("special", param.key, cond))
    assert "$expr" not in str(flt) and "nan" not in str(flt)
    _write(store, "Location", "far", 1, index={"special": [(param.key, 0, -42.25, 96.31)]})   # the antipode
    assert [v.id for v in store.search("Location", q.Match("special", param.key, cond)).items] == ["far"]
