"""Shared fixtures: a fresh app on a temporary SQLite store for each test."""
from __future__ import annotations

import os

import pytest

from fhirserver import create_app
from fhirserver.config import Settings

FHIR_JSON = "application/fhir+json"
EXAMPLES_DIR = os.path.join(os.path.dirname(__file__), "data", "hl7-examples")


def make_settings(tmp_path, **overrides) -> Settings:
    """Settings of a test server; authorization is off unless a test asks for it (tests/smart_auth)."""
    overrides.setdefault("auth", "off")
    return Settings(store=f"sqlite:///{tmp_path}/medport.db", base_url="http://fhir.test/fhir",
                    sqlite_synchronous="NORMAL", **overrides)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


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
