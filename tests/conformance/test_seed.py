"""Med-Port's own definitions are written at the init step (conformance/seed.py): created, brought up to
date, never written twice, and served like any resource."""
from __future__ import annotations

from fhirserver import jsonio
from fhirserver.conformance import definitions, seed
from fhirserver.context import initialize
from fhirserver.interactions.common import store_server_written

FACILITY = "https://medport.health/fhir/CodeSystem/facility-type"
CUSTODIAN = "https://medport.health/fhir/SearchParameter/custodian"
OPEN_NOW = "https://medport.health/fhir/SearchParameter/Location-open-now"


def test_a_fresh_store_holds_the_med_port_definitions(ctx, client):
    keys = seed.keys()
    assert {"CodeSystem/facility-type", "CodeSystem/uip-vaccine", "SearchParameter/custodian",
            "SearchParameter/Location-open-now"} <= keys
    for key in keys:
        rtype, id = key.split("/")
        current = ctx.store.read(rtype, id)
        assert current is not None and current.version == 1, key
    for rtype, url in (("CodeSystem", FACILITY), ("SearchParameter", CUSTODIAN), ("SearchParameter", OPEN_NOW)):
        bundle = client.get(f"/fhir/{rtype}?url={url}").get_json()
        assert [e["resource"]["url"] for e in bundle["entry"]] == [url]
    stored = jsonio.loads(ctx.store.read("CodeSystem", "facility-type").body)
    assert definitions(ctx.store).resolve("CodeSystem", FACILITY)["meta"]["versionId"] == stored["meta"]["versionId"]


def test_the_init_step_writes_nothing_twice(ctx):
    assert seed.ensure(ctx) == 0
    initialize(ctx.settings, ctx.store)
    assert ctx.store.read("CodeSystem", "facility-type").version == 1


def test_a_changed_definition_is_brought_up_to_date(ctx):
    current = ctx.store.read("CodeSystem", "facility-type")
    changed = {**jsonio.loads(current.body), "title": "edited by hand"}
    with ctx.store.transaction() as tx:
        store_server_written(tx, ctx.base, changed, current=current)
    assert seed.ensure(ctx) == 1
    stored = jsonio.loads(ctx.store.read("CodeSystem", "facility-type").body)
    assert stored.get("title") != "edited by hand" and ctx.store.read("CodeSystem", "facility-type").version == 3


def test_the_store_uhid_system_replaces_the_template(monkeypatch):
    profile = {"resourceType": "StructureDefinition", "id": "medport-patient", "url": "https://medport.health/x",
               "differential": {"element": [{"id": "Patient.identifier:uhid.system",
                                             "fixedUri": seed.TEMPLATE_UHID_SYSTEM}]}}
    monkeypatch.setattr(seed, "_shipped", lambda: (profile,))
    mine = seed.wanted("http://hospital.test/fhir/sid/uhid")[0]
    assert mine["differential"]["element"][0]["fixedUri"] == "http://hospital.test/fhir/sid/uhid"
    assert profile["differential"]["element"][0]["fixedUri"] == seed.TEMPLATE_UHID_SYSTEM     # shipped: untouched


def test_the_med_port_patient_profile_carries_the_store_uhid_system(ctx, client):
    url = "https://medport.health/fhir/StructureDefinition/medport-patient"
    stored = definitions(ctx.store).resolve("StructureDefinition", url)
    text = jsonio.dumps(stored).decode()
    assert ctx.uhid_system in text and seed.TEMPLATE_UHID_SYSTEM not in text
    # a Patient the server gives a UHID conforms to it; one claiming it stays valid as written
    r = client.post("/fhir/Patient", json={"resourceType": "Patient", "meta": {"profile": [url]},
                                           "name": [{"family": "Sharma"}]}, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.get_data(as_text=True)


def test_an_administrators_edit_stands_and_anyone_elses_is_replaced(tmp_path, backend, monkeypatch):
    import json

    from fhirserver.smart_auth import admission
    from fhirserver.smart_auth.accounts import Users
    from tests.smart_auth._tokens import auth, make_app, mint
    app = make_app(tmp_path, backend)
    ctx, http = app.config["MEDPORT"], app.test_client()
    Users(ctx.store).add("root", "correct horse battery staple", "admin")
    admin = auth(mint(app, "user/*.cruds", subject="root", role="admin"), **{"Content-Type": "application/fhir+json"})
    exchange = auth(mint(app, "system/*.cruds", client_id="exchange"), **{"Content-Type": "application/fhir+json"})
    current = jsonio.loads(ctx.store.read("CodeSystem", "facility-type").body)
    edited = {**{k: v for k, v in current.items() if k != "meta"}, "title": "edited by an administrator"}
    assert http.put("/fhir/CodeSystem/facility-type", data=json.dumps(edited), headers=admin).status_code == 200
    assert seed.ensure(ctx) == 0
    assert jsonio.loads(ctx.store.read("CodeSystem", "facility-type").body)["title"] == "edited by an administrator"
    # deleted by an administrator: the next start writes it again
    assert http.delete("/fhir/CodeSystem/facility-type", headers=admin).status_code == 204
    assert seed.ensure(ctx) == 1 and jsonio.loads(ctx.store.read("CodeSystem", "facility-type").body) \
        .get("title") != "edited by an administrator"
    # a client's edit from before administrators alone could write definitions: replaced
    monkeypatch.setattr(admission, "check_definition_write", lambda rtype, claims: None)
    edited["title"] = "edited by a client"
    assert http.put("/fhir/CodeSystem/facility-type", data=json.dumps(edited), headers=exchange).status_code == 200
    assert seed.ensure(ctx) == 1
    assert jsonio.loads(ctx.store.read("CodeSystem", "facility-type").body).get("title") != "edited by a client"


def test_processes_starting_at_once_write_each_definition_once(tmp_path):
    import threading

    from fhirserver.storage import open_store
    from tests.conftest import make_settings
    settings = make_settings(tmp_path)
    stores = [open_store(settings) for _ in range(4)]
    errors, barrier = [], threading.Barrier(len(stores))

    def start(store):
        try:
            barrier.wait()
            initialize(settings, store)
        except Exception as e:          # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for key in seed.keys():
        assert stores[0].read(*key.split("/")).version == 1, key
    for s in stores:
        s.close()
