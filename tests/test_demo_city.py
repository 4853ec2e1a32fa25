"""The demo's city (fhirserver/demo_city.py), on both stores: a whole seeding is a few hundred Slots of
the coming week; seeding again writes nothing; a later day tops the week up; each entry is held by the
organisation that publishes it; near search and $find answer on it."""
from __future__ import annotations

import datetime

from fhirserver import demo, demo_city, jsonio
from fhirserver.governance import custodian, proxy
from fhirserver.search.parse import parse_search
from tests.conftest import data_versions

MONDAY = datetime.date(2031, 3, 3)


def _count(ctx, rtype: str, **params) -> int:
    query = parse_search(rtype, list(params.items())).query
    return ctx.store.search(rtype, query, limit=1000, total="accurate").total


def test_seeding_is_idempotent_and_small(ctx):
    first = demo_city.seed(ctx, MONDAY)
    assert first["resources"] == sum(len(r) for _holder, r in demo_city.CITY)
    assert 100 <= first["slots"] <= 400
    versions = data_versions(ctx)
    assert demo_city.seed(ctx, MONDAY) == {"resources": 0, "slots": 0}
    assert data_versions(ctx) == versions
    later = demo_city.seed(ctx, MONDAY + datetime.timedelta(days=1))      # the next day: one more day of Slots
    assert later["resources"] == 0 and 0 < later["slots"] < first["slots"]


def test_the_city_holds_what_the_issue_asks(ctx):
    demo_city.seed(ctx, MONDAY)
    blood_bank = f"{demo_city.FACILITY}|blood-bank"
    assert _count(ctx, "Location", type=blood_bank) == 2
    assert _count(ctx, "Location", type="HOSP") == 4
    assert _count(ctx, "Location", type="PHARM") == 3
    assert _count(ctx, "Location", type="HLAB,OUTLAB") == 2
    assert _count(ctx, "ChargeItemDefinition", service="HealthcareService/demo-blood-test") == 1
    for holder, resources in demo_city.CITY:
        for resource in resources:
            stored = ctx.store.read(resource["resourceType"], resource["id"])
            assert custodian.of(jsonio.loads(stored.body)) == holder


def test_near_search_and_find_on_the_city(client, ctx):
    demo_city.seed(ctx, MONDAY)
    r = client.get("/fhir/Location?type=https://medport.health/fhir/CodeSystem/facility-type|blood-bank"
                   "&near=18.5236|73.8478|10|km&_sort=near&_count=1")
    assert r.status_code == 200
    assert r.json["entry"][0]["resource"]["id"] == "demo-hospital-blood-bank"
    found = client.get("/fhir/Appointment/$find?start=2031-03-03&location=Location/demo-hospital-lab&_count=1").json
    assert found["entry"][0]["resource"]["start"] == "2031-03-03T01:30:00Z"      # 07:00 in Pune


def test_the_daughter_acts_for_asha(ctx, tmp_path):
    creds = demo.seed(ctx, str(tmp_path))
    assert creds["users"]["priya"]["role"] == proxy.ROLE
    assert proxy.live_delegation(ctx.store, "demo-daughter", "demo-patient") is not None
    assert proxy.delegating_patients(ctx.store, "demo-daughter") == ["demo-patient"]
