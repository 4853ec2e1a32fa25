"""Per-app state (issue 13.7) and the explicit init step: two apps in one process each answer by
their own UHID system; opening a store and building an app on an initialised store write nothing."""
from __future__ import annotations

from fhirserver import create_app
from fhirserver.context import initialize, initialized
from fhirserver.search import identifier_forms
from fhirserver.storage import open_store
from tests.conftest import make_settings


def test_two_apps_with_different_uhid_systems_in_one_process(tmp_path, backend):
    a = create_app(make_settings(tmp_path / "a", backend, uhid_system="urn:uhid:a"))
    b = create_app(make_settings(tmp_path / "b", backend, uhid_system="urn:uhid:b"))
    ca, cb = a.test_client(), b.test_client()
    # "123" is no UHID: a 400 under the app's own system, an ordinary (empty) search under another's
    assert ca.get("/fhir/Patient?identifier=urn:uhid:a|123").status_code == 400
    assert ca.get("/fhir/Patient?identifier=urn:uhid:b|123").status_code == 200
    assert cb.get("/fhir/Patient?identifier=urn:uhid:b|123").status_code == 400
    assert cb.get("/fhir/Patient?identifier=urn:uhid:a|123").status_code == 200
    assert a.config["MEDPORT"].uhid_system == "urn:uhid:a" and b.config["MEDPORT"].uhid_system == "urn:uhid:b"
    assert identifier_forms.canonical("urn:uhid:a", "123", "identifier") == "123"    # outside a request: none
    with a.config["MEDPORT"].forms():
        assert identifier_forms.canonical("urn:uhid:b", "123", "identifier") == "123"


class Counting:
    """A store that counts the writes made through it."""

    def __init__(self, store):
        self._store, self.writes = store, []

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name in ("put_record", "add_record", "take_record", "delete_record", "transaction", "init", "reindex"):
            def counted(*a, **k):
                self.writes.append(name)
                return attr(*a, **k)
            return counted
        return attr


def test_the_app_writes_nothing_on_an_initialised_store(tmp_path, backend):
    settings = make_settings(tmp_path, backend)
    store = open_store(settings)
    assert not initialized(store)
    initialize(settings, store)
    initialize(settings, store)         # idempotent
    assert initialized(store)
    counting = Counting(store)
    app = create_app(settings, store=counting)
    assert counting.writes == []
    assert app.test_client().get("/fhir/NamingSystem/uhid").status_code == 200


def test_a_fresh_store_is_initialised_lazily_once(tmp_path, backend):
    settings = make_settings(tmp_path, backend)
    store = open_store(settings)
    counting = Counting(store)
    create_app(settings, store=counting)
    assert "init" in counting.writes and initialized(store)
    counting.writes.clear()
    create_app(settings, store=counting)     # a second worker
    assert counting.writes == []


def test_opening_a_mongodb_store_creates_nothing(tmp_path):
    store = open_store(make_settings(tmp_path, "mongo"))
    assert store.db.list_collection_names() == []
    store.init()
    assert "ix_special_lat_lon" in store.db["resources"].index_information()
    assert any("indexes" in line for line in store.describe())
