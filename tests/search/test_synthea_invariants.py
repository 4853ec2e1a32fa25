"""Search invariants on real Synthea data (tests/data/synthea), in the spirit of
Blaze's black-box checks: counts that must add up, chains that must equal their
two-step form, includes that must equal the search they abbreviate, and the
matcher's answer for number, quantity and date prefixes."""
from __future__ import annotations

import collections
import glob
import json
import os

import pytest

from fhirserver import create_app
from fhirserver.interactions.update import update
from fhirserver.search.matcher import Matcher
from fhirserver.search.parse import parse_search
from tests.conftest import STORES, make_settings

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "synthea")
BASE = "http://fhir.test/fhir"


def _rewrite(value, ids):
    if isinstance(value, dict):
        return {k: _rewrite(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


def _resources():
    out = []
    for path in sorted(glob.glob(os.path.join(DATA, "*.json")))[:4]:
        with open(path, encoding="utf-8") as f:
            bundle = json.load(f)
        ids = {}
        for n, e in enumerate(bundle["entry"]):
            rtype = e["resource"]["resourceType"]
            ids[e["fullUrl"]] = f"{rtype}/{os.path.basename(path)[:8].lower().replace('_', '-')}-{n}"
        for e in bundle["entry"]:
            r = _rewrite(e["resource"], ids)
            r["id"] = ids[e["fullUrl"]].split("/")[1]
            out.append(r)
    return out


@pytest.fixture(scope="module", params=STORES)
def loaded(tmp_path_factory, request):
    app = create_app(make_settings(tmp_path_factory.mktemp("synthea"), request.param))
    ctx = app.config["MEDPORT"]
    matcher = Matcher(BASE)
    resources = _resources()
    for r in resources:
        update(ctx, r["resourceType"], r["id"], json.loads(json.dumps(r)))
        matcher.put(r)
    return app.test_client(), resources, matcher


def search_ids(client, query, count=1000):
    sep = "&" if "?" in query else "?"
    r = client.get(f"/fhir/{query}{sep}_count={count}")
    assert r.status_code == 200, r.json
    return [e["resource"]["id"] for e in r.json.get("entry", []) if e["search"]["mode"] == "match"]


def total(client, query):
    return client.get(f"/fhir/{query}{'&' if '?' in query else '?'}_summary=count").json["total"]


def test_everything_loaded(loaded):
    client, resources, _ = loaded
    counts = collections.Counter(r["resourceType"] for r in resources)
    for rtype, n in counts.items():
        assert total(client, rtype) == n


def test_patient_observations_three_ways(loaded):
    client, resources, _ = loaded
    for p in [r for r in resources if r["resourceType"] == "Patient"]:
        raw = {r["id"] for r in resources if r["resourceType"] == "Observation"
               and r.get("subject", {}).get("reference") == f"Patient/{p['id']}"}
        assert set(search_ids(client, f"Observation?patient={p['id']}")) == raw
        assert set(search_ids(client, f"Patient/{p['id']}/Observation")) == raw
        bundle = client.get(f"/fhir/Patient?_id={p['id']}&_revinclude=Observation:subject&_count=1").json
        assert {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"} == raw


def test_month_counts_add_up_to_the_year(loaded):
    client, resources, _ = loaded
    years = collections.Counter(r["effectiveDateTime"][:4] for r in resources
                                if r["resourceType"] == "Observation" and "effectiveDateTime" in r)
    year = years.most_common(1)[0][0]
    by_month = sum(total(client, f"Observation?date={year}-{m:02d}") for m in range(1, 13))
    assert by_month == total(client, f"Observation?date={year}") == years[year]
    assert total(client, f"Observation?date=ge{year}-01-01&date=le{year}-12-31") == years[year]
    with_date = total(client, "Observation?date:missing=false")
    assert total(client, f"Observation?date=sa{year}") + total(client, f"Observation?date=eb{year}") \
        + years[year] == with_date


def test_chain_equals_two_steps(loaded):
    client, resources, _ = loaded
    family = next(r for r in resources if r["resourceType"] == "Patient")["name"][0]["family"]
    patients = search_ids(client, f"Patient?family={family}")
    two_step = {o for p in patients for o in search_ids(client, f"Observation?subject=Patient/{p}")}
    assert set(search_ids(client, f"Observation?subject:Patient.family={family}")) == two_step
    code = next(r for r in resources if r["resourceType"] == "Observation")["code"]["coding"][0]
    subjects = {r["subject"]["reference"].split("/")[1] for r in resources if r["resourceType"] == "Observation"
                and r["code"]["coding"][0]["code"] == code["code"]}
    assert set(search_ids(client, f"Patient?_has:Observation:subject:code={code['system']}|{code['code']}")) == subjects


@pytest.mark.parametrize("query", [
    "Observation?value-quantity=gt100", "Observation?value-quantity=le5.5", "Observation?value-quantity=ap80",
    "Observation?value-quantity=lt90|http://unitsofmeasure.org|kg", "Observation?date=ge2019-06",
    "Observation?date=lt2015&_sort=-date", "Observation?combo-code-value-quantity=http://loinc.org|8480-6$gt120",
    "Encounter?date=sa2015-01-01", "Condition?onset-date=le2010", "Immunization?date=eb2018",
    "Patient?birthdate=ge1960&_sort=birthdate", "Observation?category=vital-signs&_sort=value-quantity",
])
def test_store_agrees_with_matcher_on_real_data(loaded, query):
    client, _, matcher = loaded
    rtype, qs = query.split("?")
    params = [tuple(p.split("=", 1)) for p in qs.split("&")]
    parsed = parse_search(rtype, params, base=BASE)
    expected = matcher.search(rtype, parsed.query, parsed.results.sort)
    assert search_ids(client, query) == expected
    assert expected or "ap80" in query or "eb2018" in query   # most queries must select something


def test_paging_through_everything(loaded):
    client, resources, _ = loaded
    seen, url = [], "/fhir/Observation?_count=97&_sort=-date"
    while url:
        page = client.get(url).json
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://fhir.test", "") if nxt else None
    assert len(seen) == len(set(seen)) == sum(r["resourceType"] == "Observation" for r in resources)
