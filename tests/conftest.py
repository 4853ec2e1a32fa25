"""Shared fixtures: a fresh app on a fresh store for each test, once per backend.

The `backend` fixture runs every test that uses `settings`, `app`, `client` or `store` against
each store in MEDPORT_TEST_STORES (default "sqlite,mongo"). The MongoDB runs use mongomock, in
memory, unless MEDPORT_TEST_MONGODB_URI names a real server or replica set (`make test-mongo`):
then each test gets its own database there, dropped afterwards.
"""
from __future__ import annotations

import os
import uuid

import pytest

from fhirserver import create_app
from fhirserver.config import Settings

FHIR_JSON = "application/fhir+json"
EXAMPLES_DIR = os.path.join(os.path.dirname(__file__), "data", "hl7-examples")


STORES = [s for s in os.environ.get("MEDPORT_TEST_STORES", "sqlite,mongo").split(",") if s]
MONGODB_URI = os.environ.get("MEDPORT_TEST_MONGODB_URI", "")


def store_url(backend: str, tmp_path) -> str:
    """A fresh, empty store of this backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/medport.db"
    name = f"medport_test_{uuid.uuid4().hex[:12]}"
    if MONGODB_URI:
        head, _, query = MONGODB_URI.partition("?")
        root = head.split("://", 1)[1].split("/", 1)[0]
        return f"{head.split('://', 1)[0]}://{root}/{name}" + (f"?{query}" if query else "")
    return f"mongomock://localhost/{name}"


def make_settings(tmp_path, backend: str = "sqlite", **overrides) -> Settings:
    """Settings of a test server; authorization is off unless a test asks for it (tests/smart_auth)."""
    overrides.setdefault("auth", "off")
    # the shipped definitions are put in a store on the first read of their type (seconds, once per store;
    # tests/conformance/test_served.py and the tests that read them ask for it); other tests leave them out
    overrides.setdefault("shipped_definitions", "internal")
    return Settings(store=store_url(backend, tmp_path), base_url="http://fhir.test/fhir",
                    sqlite_synchronous="NORMAL", **overrides)


@pytest.fixture(params=STORES)
def backend(request):
    return request.param


@pytest.fixture
def settings(tmp_path, backend):
    s = make_settings(tmp_path, backend)
    yield s
    if s.store.startswith("mongodb"):
        drop_database(s.store)


def drop_database(url: str) -> None:
    from pymongo import MongoClient
    client = MongoClient(url)
    client.drop_database(client.get_default_database().name)
    client.close()


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    return app.config["MEDPORT"]


def post(client, resource, **headers):
    return client.post(f"/fhir/{resource['resourceType']}", json=resource,
                       headers={"Content-Type": FHIR_JSON, **headers})


def put(client, resource, **headers):
    return client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                      headers={"Content-Type": FHIR_JSON, **headers})


def patient(**fields):
    return {"resourceType": "Patient", "name": [{"family": "Sharma", "given": ["Asha"]}],
            "birthDate": "1950-04-02", **fields}


def data_versions(ctx) -> int:
    """Versions stored, the audit trail left out: every request, refused ones included, leaves its own
    AuditEvents (docs/audit.md), so "stores nothing" means no other version. Read from the store
    itself (a request to count would add its own events)."""
    return ctx.store.history(None, limit=0).total - ctx.store.history("AuditEvent", limit=0).total
