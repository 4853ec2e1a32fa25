"""`near` answers over HTTP (search/near.py, search/opening_hours.py), on both stores: each entry's
distance in the unit asked, against an independent great-circle formula; `_sort=near` nearest first
(and -near), paged; 400 for `_sort=near` without `near` and for an unknown unit; chained
location.near; open-now / open-at by opening hours in the Location's time zone."""
from __future__ import annotations

import math

import pytest

from fhirserver.search import near as near_module
from tests.conftest import post

HERE = (12.9716, 77.5946)                       # Bengaluru
PLACES = {"MG Road": (12.9756, 77.6066), "Jayanagar": (12.9250, 77.5938), "Yelahanka": (13.1005, 77.5963),
          "Whitefield": (12.9698, 77.7500), "Mysuru": (12.2958, 76.6394)}
UCUM = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344}


def great_circle_km(a, b) -> float:
    """Spherical law of cosines (not haversine), radius 6371.0088 km: an independent oracle."""
    p1, p2, dl = math.radians(a[0]), math.radians(b[0]), math.radians(b[1] - a[1])
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.acos(max(-1.0, min(1.0, c)))


@pytest.fixture
def city(client):
    ids = {}
    for name, (lat, lon) in PLACES.items():
        ids[name] = post(client, {"resourceType": "Location", "name": name,
                                  "position": {"latitude": lat, "longitude": lon}}).get_json()["id"]
    return ids


def _entries(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)
    return [(e["resource"]["name"], e["search"]["extension"][0]["valueDistance"]) for e in r.get_json().get("entry", ())]


@pytest.mark.parametrize("unit", ["km", "m", "[mi_i]"])
def test_nearest_first_with_distances_in_the_unit_asked(client, city, unit):
    radius = 20 / UCUM[unit]
    got = _entries(client, f"/fhir/Location?near={HERE[0]}|{HERE[1]}|{radius}|{unit}&_sort=near")
    expected = sorted((great_circle_km(HERE, p), n) for n, p in PLACES.items() if great_circle_km(HERE, p) <= 20)
    assert [n for n, _d in got] == [n for _k, n in expected]
    for (_n, d), (km, _name) in zip(got, expected, strict=True):
        assert d["unit"] == unit and d["system"] == "http://unitsofmeasure.org"
        assert d["value"] == pytest.approx(km / UCUM[unit], rel=1e-3, abs=1)


def test_farthest_first_and_paging(client, city):
    url = f"/fhir/Location?near={HERE[0]}|{HERE[1]}|200|km&_sort=-near&_count=2"
    names = []
    while url:
        bundle = client.get(url).get_json()
        assert bundle["total"] == 5
        names += [e["resource"]["name"] for e in bundle["entry"]]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].removeprefix("http://fhir.test") if nxt else None
    assert names == sorted(PLACES, key=lambda n: -great_circle_km(HERE, PLACES[n]))


def test_distances_without_sorting(client, city):
    got = dict(_entries(client, f"/fhir/Location?near={HERE[0]}|{HERE[1]}|5"))
    assert set(got) == {n for n, p in PLACES.items() if great_circle_km(HERE, p) <= 5}
    assert all(d["unit"] == "km" for d in got.values())


@pytest.mark.parametrize("query", ["_sort=near", "near=12.9|77.5|5|furlong", "open-now=true",
                                   f"near={HERE[0]}|{HERE[1]}|5&_sort=near,name",
                                   f"near={HERE[0]}|{HERE[1]}|5&open-at=tomorrow",
                                   f"near={HERE[0]}|{HERE[1]}|5&open-at=2026-12-07T10:00:00"])
def test_bad_near_requests_are_400(client, city, query):
    r = client.get(f"/fhir/Location?{query}")
    assert r.status_code == 400 and r.get_json()["resourceType"] == "OperationOutcome"


def test_too_many_matches_to_sort_is_400(client, city, monkeypatch):
    monkeypatch.setattr(near_module, "MAX_NEAR", 2)
    assert client.get(f"/fhir/Location?near={HERE[0]}|{HERE[1]}|200&_sort=near").status_code == 400


def test_chained_near(client, city):
    service = post(client, {"resourceType": "HealthcareService", "name": "Blood test",
                            "location": [{"reference": f"Location/{city['Jayanagar']}"}]}).get_json()["id"]
    role = post(client, {"resourceType": "PractitionerRole",
                         "location": [{"reference": f"Location/{city['Mysuru']}"}]}).get_json()["id"]
    def ids(url):
        return {e["resource"]["id"] for e in client.get(url).get_json().get("entry", ())}
    assert ids(f"/fhir/HealthcareService?location.near={HERE[0]}|{HERE[1]}|10|km") == {service}
    assert ids(f"/fhir/HealthcareService?location.near={PLACES['Mysuru'][0]}|{PLACES['Mysuru'][1]}|10|km") == set()
    assert ids(f"/fhir/PractitionerRole?location.near={PLACES['Mysuru'][0]}|{PLACES['Mysuru'][1]}|10|km") == {role}


def test_open_at_by_opening_hours_and_time_zone(client):
    def place(name, hours, tz=None):
        resource = {"resourceType": "Location", "name": name, "position": {"latitude": HERE[0], "longitude": HERE[1]},
                    "hoursOfOperation": hours}
        if tz:
            resource["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": tz}]
        post(client, resource)
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    place("Day clinic", [{"daysOfWeek": weekdays, "openingTime": "09:00:00", "closingTime": "17:00:00"}], "Asia/Kolkata")
    place("Night pharmacy", [{"daysOfWeek": ["mon"], "openingTime": "20:00:00", "closingTime": "02:00:00"}],
          "Asia/Kolkata")
    place("Blood bank", [{"daysOfWeek": weekdays + ["sat", "sun"], "allDay": True}])
    place("Closed on Mondays", [{"daysOfWeek": ["tue"], "allDay": True}])

    def open_at(instant):
        r = client.get(f"/fhir/Location?near={HERE[0]}|{HERE[1]}|1&open-at={instant.replace('+', '%2B')}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return {e["resource"]["name"] for e in r.get_json().get("entry", ())}
    # Monday 2026-12-07, 10:00 in India (04:30 UTC)
    assert open_at("2026-12-07T10:00:00+05:30") == {"Day clinic", "Blood bank"}
    assert open_at("2026-12-07T04:30:00Z") == {"Day clinic", "Blood bank"}
    assert open_at("2026-12-07T08:30:00+05:30") == {"Blood bank"}
    assert open_at("2026-12-07T23:00:00+05:30") == {"Night pharmacy", "Blood bank"}
    assert open_at("2026-12-08T01:00:00+05:30") == {"Night pharmacy", "Blood bank"}    # 19:30 on Monday in UTC
    assert open_at("2026-12-08T06:00:00+05:30") == {"Blood bank", "Closed on Mondays"}
    assert client.get(f"/fhir/Location?near={HERE[0]}|{HERE[1]}|1&open-now=true").status_code == 200
