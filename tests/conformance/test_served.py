"""The shipped definitions are read and searched like stored ones (fhirserver/conformance/served.py):
put in a store on the first read of their type, never over an id the store already used."""
from __future__ import annotations

import json

import pytest

from fhirserver.conformance import served
from fhirserver.interactions.create import create
from fhirserver.interactions.delete import delete
from fhirserver.interactions.update import update
from fhirserver.validation import validate
from tests.conftest import make_settings

GENDER = "http://hl7.org/fhir/ValueSet/administrative-gender"


@pytest.fixture
def settings(tmp_path, backend):
    return make_settings(tmp_path, backend, shipped_definitions="served")
US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"


def _search(client, path: str) -> dict:
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


# the import is the same code on both stores (test_once_per_store_and_type runs on both); putting all
# 4,000 shipped definitions into mongomock takes minutes, so this one runs on SQLite
@pytest.mark.parametrize("backend", ["sqlite"])
def test_core_us_core_and_terminology_are_served(client):
    sd = _search(client, "/fhir/StructureDefinition/us-core-patient")
    assert sd["url"] == US_CORE_PATIENT and sd["snapshot"]["element"]
    found = _search(client, f"/fhir/ValueSet?url={GENDER}")
    assert [e["resource"]["id"] for e in found["entry"]] == ["administrative-gender"]
    expansion = _search(client, "/fhir/ValueSet/administrative-gender/$expand")["expansion"]
    assert {c["code"] for c in expansion["contains"]} == {"male", "female", "other", "unknown"}
    names = _search(client, "/fhir/SearchParameter?base=Patient&code=name")
    assert [e["resource"]["url"] for e in names["entry"]] == ["http://hl7.org/fhir/SearchParameter/Patient-name"]
    assert _search(client, "/fhir/ConceptMap?_summary=count")["total"] == len(served.shipped("ConceptMap"))
    assert _search(client, "/fhir/CodeSystem?url=http://hl7.org/fhir/administrative-gender")["total"] == 1


def test_once_per_store_and_type(ctx, client):
    assert _search(client, "/fhir/ConceptMap?_summary=count")["total"] == 19
    assert ctx.store.get_record(served.RECORD_KIND, "served-definitions:ConceptMap")["written"] == 19
    served._done.pop(ctx.store, None)        # a new process: the record says it is done
    assert _search(client, "/fhir/ConceptMap?_summary=count")["total"] == 19
    assert ctx.store.history("ConceptMap", None, limit=0).total == 19


def test_what_the_store_holds_or_deleted_stands(tmp_path):
    from fhirserver import create_app
    app = create_app(make_settings(tmp_path, shipped_definitions="served"))
    ctx = app.config["MEDPORT"]
    mine = {"resourceType": "ConceptMap", "id": "101", "status": "draft", "url": "urn:mine:map"}
    update(ctx, "ConceptMap", "101", mine)
    shipped_ids = [r["id"] for r in served.shipped("ConceptMap")]
    assert "101" in shipped_ids
    gone = next(i for i in shipped_ids if i != "101")
    create_then_delete = {"resourceType": "ConceptMap", "id": gone, "status": "draft"}
    update(ctx, "ConceptMap", gone, create_then_delete)
    delete(ctx, "ConceptMap", gone)
    client = app.test_client()
    assert _search(client, "/fhir/ConceptMap/101")["url"] == "urn:mine:map"
    assert client.get(f"/fhir/ConceptMap/{gone}").status_code == 410
    assert _search(client, "/fhir/ConceptMap?_summary=count")["total"] == 18


def test_tokenless_readers_see_them(tmp_path):
    from tests.smart_auth._tokens import make_app
    app = make_app(tmp_path, shipped_definitions="served")
    r = app.test_client().get(f"/fhir/ValueSet?url={GENDER}")
    assert r.status_code == 200 and r.get_json()["total"] == 1


@pytest.mark.parametrize("rtype", sorted(served.SERVED_TYPES))
def test_every_shipped_definition_is_valid_r4(rtype):
    """What served.py would leave out (a definition R4 refuses) is caught here, at build time."""
    for resource in served.shipped(rtype):
        validate(resource)


def test_internal_leaves_the_store_as_it_is(tmp_path):
    from fhirserver import create_app
    client = create_app(make_settings(tmp_path, shipped_definitions="internal")).test_client()
    assert client.get("/fhir/ValueSet/administrative-gender").status_code == 404
    assert client.get(f"/fhir/ValueSet/$expand?url={GENDER}").status_code == 200     # still known


def test_writes_do_not_wait_for_it(ctx):
    """Conditional criteria judge what the store holds; nothing is imported by a write."""
    create(ctx, "ValueSet", {"resourceType": "ValueSet", "status": "draft", "url": GENDER}, if_none_exist=f"url={GENDER}")
    assert ctx.store.get_record(served.RECORD_KIND, "served-definitions:ValueSet") is None


def test_copies_are_served_not_resolved_and_follow_the_release(ctx, client, monkeypatch):
    """A store's copies judge nothing (the catalogue of the running release does) and a later release
    brings them up to date; a token cannot mark its own definition as a copy."""
    from fhirserver.conformance import trust
    assert _search(client, "/fhir/ConceptMap?_summary=count")["total"] == 19
    copy = ctx.store.read("ConceptMap", "101")
    stored = json.loads(copy.body)
    assert trust.shipped_copy(stored) and not trust.trusted(stored)
    changed = [dict(r, title="Changed by a later release") if r["id"] == "101" else r
               for r in served.shipped("ConceptMap")]
    monkeypatch.setattr(served, "shipped", lambda rtype: tuple(changed) if rtype == "ConceptMap" else ())
    monkeypatch.setattr(served, "fingerprint", lambda rtype: "next-release")
    served._done.pop(ctx.store, None)
    assert _search(client, "/fhir/ConceptMap/101")["title"] == "Changed by a later release"
    assert ctx.store.read("ConceptMap", "101").version == copy.version + 1


def test_a_token_cannot_mark_a_definition_as_a_shipped_copy():
    from fhirserver.conformance import trust
    from fhirserver.smart_auth.access import Access
    from fhirserver.smart_auth.scopes import Grants
    resource = {"resourceType": "ValueSet", "meta": {"tag": [dict(trust.SHIPPED_COPY)]}}
    trust.stamp(resource, Access(Grants.parse("user/*.cruds"), claims={"role": "admin"}), True)
    assert not trust.shipped_copy(resource)
