"""Cost limits of searches (docs/search.md "Cost limits", search/limits.py; security issue 12):
every hostile shape of query is refused with a 400 naming the limit, or stopped at the store's
time limit with a 503, on both stores; never a 500, never an unbounded amount of work."""
from __future__ import annotations

import itertools
import sqlite3

import pytest
from pymongo.errors import ExecutionTimeout

from fhirserver import create_app
from fhirserver.errors import TooCostly
from fhirserver.search import limits
from fhirserver.search.limits import DEFAULT_LIMITS, size
from fhirserver.search.parse import parse_search
from fhirserver.search.results import Include
from fhirserver.storage.base import Version
from fhirserver.storage.sqlite_search import statement_errors
from tests.conftest import FHIR_JSON, make_settings, post

UNTYPED_ANY = "Provenance?target.based-on.subject.name=x"
FOUR_LINKS = "Observation?subject:Patient.link:Patient.link:Patient.link:Patient.name=x"


def too_costly(r, *words):
    assert r.status_code == 400, (r.status_code, r.get_data(as_text=True)[:500])
    issue = r.json["issue"][0]
    assert issue["code"] == "too-costly", issue
    for w in words:
        assert w in issue["diagnostics"], issue["diagnostics"]
    return issue["diagnostics"]


@pytest.fixture
def asha(client):
    r = post(client, {"resourceType": "Patient", "name": [{"family": "Sharma"}]})
    pid = r.json["id"]
    assert post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"},
                         "subject": {"reference": f"Patient/{pid}"}}).status_code == 201
    return pid


# ---- chains -----------------------------------------------------------------------------------

def test_untyped_chain_through_any_type_reference_names_the_type_modifier(client):
    text = too_costly(client.get(f"/fhir/{UNTYPED_ANY}"), "target:", "modifier")
    assert "target.based-on.subject.name" in text


def test_the_typed_chain_is_answered(client, asha):
    r = client.get("/fhir/Provenance?target:Observation.subject:Patient.name=sharma")
    assert r.status_code == 200, r.json
    r = client.get("/fhir/Observation?subject:Patient.name=sharma")
    assert r.status_code == 200 and r.json["total"] == 1


def test_untyped_chain_with_few_targets_still_works(client, asha):
    r = client.get("/fhir/Observation?subject.name=sharma")       # Group, Device, Patient, Location
    assert r.status_code == 200 and r.json["total"] == 1


def test_the_reported_query_parses_to_nothing_and_stays_bounded():
    with pytest.raises(TooCostly):
        parse_search("Provenance", [("target.based-on.subject.name", "x")])
    with pytest.raises(TooCostly):       # 32 repeats in one POST _search: refused, not 32 x 3,570 nodes
        parse_search("Provenance", [("target.based-on.subject.name", "x")] * 32)


def test_four_chain_links_are_a_400_not_a_500(client):
    too_costly(client.get(f"/fhir/{FOUR_LINKS}"), "at most 3 levels", "subject:Patient.link")


def test_three_chain_links_are_answered(client, asha):
    r = client.get("/fhir/Observation?subject:Patient.link:Patient.link:Patient.name=x")
    assert r.status_code == 200, r.json


def test_nested_has_is_bounded_by_the_same_depth(client):
    three = "_has:Observation:subject:_has:Provenance:target:_has:Provenance:target:agent"
    assert client.get("/fhir/Patient", query_string={three: "Practitioner/1"}).status_code == 200
    four = three.replace(":agent", ":_has:Provenance:target:agent")
    too_costly(client.get("/fhir/Patient", query_string={four: "Practitioner/1"}), "at most 3 levels")


# ---- values, parameters, nodes ----------------------------------------------------------------

@pytest.mark.parametrize("n", [496, 1000])
def test_many_comma_separated_values_are_a_400(client, n):
    too_costly(client.get("/fhir/Patient", query_string={"name": ",".join(["a"] * n)}),
               f"{n} comma-separated values", "at most 100")


def test_a_hundred_values_are_answered(client, asha):
    r = client.get("/fhir/Patient", query_string={"name": ",".join(["zz"] * 99 + ["sharma"])})
    assert r.status_code == 200 and r.json["total"] == 1


@pytest.mark.parametrize("n", [51, 1000])
def test_many_repeats_of_a_parameter_are_a_400(client, n):
    too_costly(client.get("/fhir/Patient?" + "&".join(["name=a"] * n)), f"{n} parameters", "at most 50")


def test_many_repeats_by_post_search_are_a_400(client):
    r = client.post("/fhir/Patient/_search", data="&".join(["name=a"] * 1000),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    too_costly(r, "parameters")


def test_the_node_cap_holds_when_each_parameter_is_within_its_own(client):
    # 6 parameters x 99 values: every value and parameter count is allowed, the whole is not
    query = "&".join("name=" + ",".join(f"v{i}x{j}" for j in range(99)) for i in range(6))
    too_costly(client.get(f"/fhir/Patient?{query}"), "more than 500 query nodes", "Narrow it")


def test_composite_values_count_as_nodes(client):
    value = ",".join(["http://loinc.org|8480-6$lt60"] * 99)
    query = "&".join([f"code-value-quantity={value}"] * 6)
    too_costly(client.get(f"/fhir/Observation?{query}"), "query nodes")


def test_every_parsed_query_is_within_the_node_cap():
    ok = parse_search("Patient", [("name", ",".join(["a"] * 100))] * 4)
    assert size(ok.query) <= DEFAULT_LIMITS.max_nodes
    with pytest.raises(TooCostly):
        parse_search("Patient", [("name", ",".join(["a"] * 100))] * 5)


def test_limits_come_from_the_settings(tmp_path, backend):
    from fhirserver import create_app
    from tests.conftest import make_settings
    app = create_app(make_settings(tmp_path, backend, search_max_values=3, search_max_chain_depth=1,
                                   search_max_chain_targets=1))
    c = app.test_client()
    too_costly(c.get("/fhir/Patient?name=a,b,c,d"), "at most 3")
    assert c.get("/fhir/Patient?name=a,b,c").status_code == 200
    too_costly(c.get("/fhir/Observation?subject:Patient.organization.name=x"), "at most 1 levels")
    too_costly(c.get("/fhir/Observation?subject.name=x"), "subject:")


def test_system_search_type_list_is_bounded(client):
    many = ",".join(["Patient"] * 101)
    too_costly(client.get(f"/fhir?_type={many}"), "_type")


# ---- bundles ----------------------------------------------------------------------------------

def _search_entries(n, url):
    return [{"request": {"method": "GET", "url": url}} for _ in range(n)]


def test_batch_search_entries_share_a_node_budget(client):
    # each entry: 6 x 51 values = 313 nodes, fine alone; 2000 in all admits 6 of them
    url = "Patient?" + "&".join("name=" + ",".join(f"v{i}x{j}" for j in range(51)) for i in range(6))
    assert size(parse_search("Patient", [tuple(p.split("=")) for p in url.split("?")[1].split("&")]).query) == 313
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": _search_entries(8, url)}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.json
    statuses = [e["response"]["status"] for e in r.json["entry"]]
    assert statuses[:6] == ["200 OK"] * 6 and all(s.startswith("400") for s in statuses[6:]), statuses
    outcome = r.json["entry"][7]["response"]["outcome"]
    assert "2000 query nodes" in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["code"] == "too-costly"


def test_batch_of_hostile_entries_fails_each_entry_cleanly(client):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": _search_entries(120, UNTYPED_ANY)}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    assert {e["response"]["status"][:3] for e in r.json["entry"]} == {"400"}


def test_transaction_search_entries_share_a_node_budget(client):
    url = "Patient?" + "&".join("name=" + ",".join(f"v{i}x{j}" for j in range(51)) for i in range(6))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": _search_entries(7, url)}
    text = too_costly(client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON}), "2000 query nodes")
    assert "Bundle.entry[6]" in text
    bundle["entry"] = _search_entries(6, url)
    assert client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON}).status_code == 200


# ---- time limit inside the store ----------------------------------------------------------------

@pytest.fixture
def many_patients(client):
    entries = [{"resource": {"resourceType": "Patient", "name": [{"family": f"Fam{i}", "given": [f"G{i}"]}]},
                "request": {"method": "POST", "url": "Patient"}} for i in range(300)]
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    return client


@pytest.fixture
def fast_clock(monkeypatch):
    """A clock that moves a minute each time it is read: every deadline passes at its first check."""
    ticks = itertools.count(0, 60)
    monkeypatch.setattr(limits, "_now", lambda: float(next(ticks)))


def test_a_search_past_the_time_limit_is_stopped_with_503(many_patients, fast_clock):
    r = many_patients.get("/fhir/Patient?name:contains=am&_total=accurate&_sort=family")
    assert r.status_code == 503, r.get_data(as_text=True)[:300]
    assert r.headers["Retry-After"]
    assert r.json["issue"][0]["code"] == "too-costly"
    assert "time limit" in r.json["issue"][0]["diagnostics"]


def test_without_a_deadline_the_same_search_is_answered(tmp_path, backend, fast_clock):
    from fhirserver import create_app
    from tests.conftest import make_settings
    c = create_app(make_settings(tmp_path, backend, search_time_limit_ms=0)).test_client()
    assert post(c, {"resourceType": "Patient", "name": [{"family": "Fam"}]}).status_code == 201
    assert c.get("/fhir/Patient?name:contains=am&_total=accurate").status_code == 200


def test_sqlite_progress_handler_aborts_a_running_statement(tmp_path, fast_clock):
    from fhirserver.storage.sqlite import SqliteStore
    store = SqliteStore(str(tmp_path / "s.db"))
    conn = store._conn()
    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) SELECT count(*) FROM n"
    with limits.time_limit(1000), pytest.raises(sqlite3.OperationalError, match="interrupt"):
        conn.execute(slow).fetchone()
    assert conn.execute(slow).fetchone() == (1000000,)      # no deadline: runs to the end


def test_mongo_commands_carry_max_time_ms_and_a_timeout_is_a_503(tmp_path, monkeypatch):
    app = create_app(make_settings(tmp_path, "mongo"))        # MongoDB's own time limit (maxTimeMS)
    c = app.test_client()
    resources = app.config["MEDPORT"].store.resources
    seen = []
    real = type(resources).aggregate

    def spy(self, pipeline, *a, **kw):
        seen.append(kw.get("maxTimeMS"))
        return real(self, pipeline, *a, **kw)
    monkeypatch.setattr(type(resources), "aggregate", spy)
    assert c.get("/fhir/Patient?name=x").status_code == 200
    assert seen and all(isinstance(ms, int) and 0 < ms <= 10000 for ms in seen), seen

    def timeout(self, *a, **kw):
        raise ExecutionTimeout("operation exceeded time limit", 50)
    monkeypatch.setattr(type(resources), "aggregate", timeout)
    r = c.get("/fhir/Patient?name=x")
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "time limit" in r.json["issue"][0]["diagnostics"]


def test_sqlite_size_errors_are_too_costly_not_500():
    for message in ("parser stack overflow", "Expression tree is too large (maximum depth 1000)",
                    "too many terms in compound SELECT"):
        with pytest.raises(TooCostly), statement_errors():
            raise sqlite3.OperationalError(message)
    with pytest.raises(sqlite3.OperationalError), statement_errors():
        raise sqlite3.OperationalError("no such table: x")


# ---- includes ---------------------------------------------------------------------------------

def test_includes_of_a_full_page_stay_within_sqlite_expression_depth(ctx):
    page = [Version("Observation", f"o{i}", 1, "2024-01-01T00:00:00.000Z", "POST", b"{}") for i in range(1200)]
    for spec in (Include("Observation", "Observation.subject", None, False, False),
                 Include("Observation", "Observation.subject", None, True, True)):
        assert ctx.store.includes(page, [spec]) == []


def test_include_iterate_is_bounded(client, asha):
    r = client.get("/fhir/Observation?_include:iterate=*&_revinclude:iterate=*&_include=Observation:subject")
    assert r.status_code == 200
    from fhirserver.storage.base import MAX_INCLUDES, MAX_ITERATE
    assert MAX_ITERATE <= 4 and MAX_INCLUDES <= 1000
