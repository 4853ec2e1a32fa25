"""Unknown search parameters are ignored (search.html#errors: "Servers SHALL ignore unknown parameters"),
reported in an OperationOutcome entry (search.mode = outcome) and left out of the self link;
Prefer: handling=strict answers 400. Unknown modifiers and malformed values of known parameters stay 400."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import FHIR_JSON, patient, post

STRICT = {"Prefer": "handling=strict"}


def _self_params(bundle) -> list[tuple[str, str]]:
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    return parse_qsl(urlsplit(url).query)


def _outcomes(bundle) -> list[dict]:
    return [e for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]


def _ignored(bundle) -> list[str]:
    [entry] = _outcomes(bundle)
    issues = entry["resource"]["issue"]
    assert entry["resource"]["resourceType"] == "OperationOutcome"
    assert {i["severity"] for i in issues} == {"warning"}
    return [i["details"]["text"] for i in issues]


@pytest.fixture
def asha(client):
    return post(client, patient()).json["id"]


def test_fhirpy_count_is_answered(client, asha):
    """fhirpy's count() sends _totalMethod; it used to get a 400."""
    r = client.get("/fhir/Patient?name=Sharma&_totalMethod=count&_count=0")
    assert r.status_code == 200, r.json
    assert r.json["total"] == 1
    assert _ignored(r.json) == ["_totalMethod"]
    assert _self_params(r.json) == [("name", "Sharma"), ("_count", "0")]


def test_each_ignored_parameter_is_named_and_matches_are_unchanged(client, asha):
    post(client, patient(name=[{"family": "Iyer"}]))
    r = client.get("/fhir/Patient?family=Sharma&shoe-size=9&_totalMethod=count&shoe-size=10&_contained=true")
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json["entry"] if e["search"]["mode"] == "match"] == [asha]
    assert _ignored(r.json) == ["shoe-size", "_totalMethod", "_contained"]           # each name once
    assert all("was ignored" in i["diagnostics"] for i in _outcomes(r.json)[0]["resource"]["issue"])
    assert _self_params(r.json) == [("family", "Sharma")]


def test_without_unknown_parameters_there_is_no_outcome_entry(client, asha):
    r = client.get("/fhir/Patient?name=Sharma")
    assert r.status_code == 200 and _outcomes(r.json) == []


def test_strict_handling_keeps_the_400(client, asha):
    r = client.get("/fhir/Patient?name=Sharma&_totalMethod=count", headers=STRICT)
    assert r.status_code == 400 and "_totalMethod" in r.json["issue"][0]["diagnostics"]
    r = client.post("/fhir/Patient/_search", data={"shoe": "9"}, headers=STRICT)
    assert r.status_code == 400


@pytest.mark.parametrize("query", [
    "name:sounds-like=Sharma",          # unknown modifier on a known parameter
    "gender:foo=male",
    "birthdate=yesterday",              # malformed value of a known parameter
    "_count=many",
    "_sort=shoe-size",                  # _sort by an unknown parameter: the order would change
    "_include=Patient:shoe",
    "_summary=maybe",
    "name=",                            # empty value of a known parameter
])
def test_unknown_modifiers_and_malformed_values_stay_400(client, asha, query):
    r = client.get(f"/fhir/Patient?{query}&_totalMethod=count")
    assert r.status_code == 400, query


def test_unknown_parameters_in_chains_and_has_are_ignored(client, asha):
    post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
                  "subject": {"reference": f"Patient/{asha}"}})
    r = client.get("/fhir/Observation?subject:Patient.shoe=9&subject.shoe=9&code:text=bp")
    assert r.status_code == 200 and r.json["total"] == 1
    assert _ignored(r.json) == ["subject:Patient.shoe", "subject.shoe"]
    r = client.get("/fhir/Patient?_has:Observation:patient:shoe=9&_totalMethod=")
    assert r.status_code == 200 and _ignored(r.json) == ["_has:Observation:patient:shoe", "_totalMethod"]
    assert _self_params(r.json) == []


def test_post_search_compartment_and_system_search(client, asha):
    r = client.post("/fhir/Patient/_search", data={"name": "Sharma", "_totalMethod": "count"})
    assert r.status_code == 200 and r.json["total"] == 1 and _ignored(r.json) == ["_totalMethod"]
    assert _self_params(r.json) == [("name", "Sharma")]
    r = client.get(f"/fhir/Patient/{asha}/Observation?shoe=9")
    assert r.status_code == 200 and _ignored(r.json) == ["shoe"]
    r = client.get("/fhir?_type=Patient&name=Sharma&shoe=9")
    assert r.status_code == 200 and r.json["total"] == 1 and _ignored(r.json) == ["shoe"]
    r = client.get("/fhir?_type=Patient,Observation&_totalMethod=count")
    assert r.status_code == 200 and r.json["total"] == 1 and _ignored(r.json) == ["_totalMethod"]
    assert ("_totalMethod", "count") not in _self_params(r.json)
    # a parameter only some of the types know is not unknown: it must be common to all (search.html#all)
    r = client.get("/fhir?_type=Patient,Observation&name=Sharma")
    assert r.status_code == 400 and "common" in r.json["issue"][0]["diagnostics"]
    assert client.get("/fhir?_type=Patient&shoe=9", headers=STRICT).status_code == 400


def test_summary_count_still_reports_the_outcome(client, asha):
    r = client.get("/fhir/Patient?_summary=count&shoe=9")
    assert r.status_code == 200 and r.json["total"] == 1
    assert [e["search"]["mode"] for e in r.json["entry"]] == ["outcome"]


def _batch(client, urls, kind="batch", **headers):
    entries = [{"request": {"method": "GET", "url": u}} for u in urls]
    return client.post("/fhir", json={"resourceType": "Bundle", "type": kind, "entry": entries},
                       headers={"Content-Type": FHIR_JSON, **headers})


def test_bundle_get_entries(client, asha):
    urls = ["Patient?name=Sharma&_totalMethod=count", f"Patient/{asha}/_history?_totalMethod=count",
            "Patient?name:sounds-like=x&shoe=1"]
    for kind in ("batch", "transaction"):
        r = _batch(client, urls[:2], kind)
        assert r.status_code == 200, r.json
        search, history = (e["resource"] for e in r.json["entry"])
        assert search["total"] == 1 and _ignored(search) == ["_totalMethod"]
        assert _self_params(search) == [("name", "Sharma")]
        assert history["type"] == "history" and _self_params(history) == []
    r = _batch(client, urls)
    assert [e["response"]["status"][:3] for e in r.json["entry"]] == ["200", "200", "400"]
    r = _batch(client, urls[:2], **STRICT)
    assert [e["response"]["status"][:3] for e in r.json["entry"]] == ["400", "400"]
    assert _batch(client, urls[:1], "transaction", **STRICT).status_code == 400


def test_history_ignores_unknown_parameters(client, asha):
    for path in (f"Patient/{asha}/_history", "Patient/_history", "_history"):
        r = client.get(f"/fhir/{path}?_totalMethod=count&_count=5")
        assert r.status_code == 200 and r.json["type"] == "history" and r.json["entry"]
        assert _self_params(r.json) == [("_count", "5")]
        assert client.get(f"/fhir/{path}?_totalMethod=count", headers=STRICT).status_code == 400
        assert client.get(f"/fhir/{path}?_at=2020-01-01").status_code == 400     # known, not supported
        assert client.get(f"/fhir/{path}?_since:foo=2020-01-01").status_code == 400


def test_cost_limits_hold_for_what_is_used(client, asha):
    many = ",".join(f"v{i}" for i in range(101))
    assert client.get(f"/fhir/Patient?name={many}&shoe=9").status_code == 400       # too many values: used
    r = client.get(f"/fhir/Patient?name=Sharma&shoe={many}")                          # ignored: not parsed
    assert r.status_code == 200 and _ignored(r.json) == ["shoe"]
    # every parameter given counts toward SEARCH_MAX_PARAMS, so the outcome stays bounded too
    query = "&".join(f"shoe{i}=1" for i in range(51))
    r = client.get(f"/fhir/Patient?{query}")
    assert r.status_code == 400 and r.json["issue"][0]["code"] == "too-costly"


def test_bundle_node_budget_counts_entries_with_unknown_parameters(client, asha):
    """An ignored parameter must not take an entry out of the Bundle's shared node budget."""
    url = "Patient?" + "&".join("name=" + ",".join(f"v{i}x{j}" for j in range(51)) for i in range(6)) + "&shoe=1"
    r = _batch(client, [url] * 8)
    statuses = [e["response"]["status"][:3] for e in r.json["entry"]]
    assert statuses == ["200"] * 6 + ["400"] * 2, statuses
    assert _batch(client, [url] * 7, "transaction").status_code == 400
