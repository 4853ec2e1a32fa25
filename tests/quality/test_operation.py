"""$data-quality over HTTP with authorization on (docs/data-quality.md, "Who may ask"): regulators and
administrators read the figures as Parameters or as an HTML page; hospital, patient and proxy tokens
are refused (403), no token 401; every call is audited like any other operation."""
from __future__ import annotations

import pytest

from fhirserver import jsonio
from fhirserver.audit_log import journal
from fhirserver.search import query as q
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.clients import Clients
from tests.scheduling._world import PASSWORD, A, B, World
from tests.smart_auth._tokens import auth, mint

HOSTILE_SYSTEM = 'urn:x:"><script>alert(1)</script>'


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend)
    users = Users(w.ctx.store)
    users.add("inspector", PASSWORD, "regulator")
    users.add("root", PASSWORD, "admin")
    w.regulator = mint(w.app, "user/*.rs", subject="inspector", role="regulator")
    w.admin = mint(w.app, "user/*.cruds", subject="root", role="admin")
    client, _secret = Clients(w.ctx.store).add("Health regulator", "confidential-symmetric",
                                               ["https://regulator.test/cb"], ["system/*.rs"], regulator=True)
    w.regulator_backend = mint(w.app, "system/*.rs", subject=client.client_id, client_id=client.client_id)
    # an administrator defines the hostile system (a client-chosen system the exchange does not define counts
    # as "other"): its name reaches the page, to be escaped
    hostile = {"resourceType": "CodeSystem", "url": HOSTILE_SYSTEM, "status": "active", "content": "not-present"}
    assert w.send(w.admin, "POST", "/fhir/CodeSystem", hostile).status_code == 201
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}, {"system": HOSTILE_SYSTEM, "code": "1"}]},
           "subject": {"reference": f"Patient/{w.asha}"}}
    for token, subject in ((w.a, w.asha), (w.a, "nobody"), (w.b, w.ravi)):
        r = w.send(token, "POST", "/fhir/Observation", {**obs, "subject": {"reference": f"Patient/{subject}"}})
        assert r.status_code == 201, r.get_data(as_text=True)
    return w


def groups(body: dict) -> dict[tuple[str, str], dict]:
    """{(custodian, type): {part name: value}} (failingRule and codeSystem parts as lists)."""
    out = {}
    for g in (p for p in body["parameter"] if p["name"] == "group"):
        parts: dict = {"codeSystem": {}}
        for p in g["part"]:
            if p["name"] == "codeSystem":
                sub = {x["name"]: next(v for k, v in x.items() if k.startswith("value")) for x in p["part"]}
                parts["codeSystem"][sub["system"]] = sub["count"]
            else:
                parts[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
        out[((parts.get("custodian") or {}).get("reference", ""), parts["type"])] = parts
    return out


@pytest.mark.parametrize("who", ["regulator", "regulator_backend", "admin"])
def test_regulators_and_administrators_read_the_figures(world, who):
    r = world.send(getattr(world, who), "GET", "/fhir/$data-quality")
    assert r.status_code == 200, r.get_data(as_text=True)
    found = groups(r.get_json())
    a_obs, b_obs = found[(A, "Observation")], found[(B, "Observation")]
    assert (a_obs["total"], a_obs["unchecked"], a_obs["lacksUhidSubject"]) == (2, 2, 1)
    assert a_obs["codeSystem"] == {"http://loinc.org": 2, HOSTILE_SYSTEM: 2}
    assert (b_obs["total"], b_obs["lacksUhidSubject"]) == (1, 0)
    assert found[(A, "Schedule")]["total"] == 1


def test_the_custodian_and_type_parameters_narrow_the_answer(world):
    r = world.send(world.regulator, "GET", f"/fhir/$data-quality?custodian={A}&type=Observation")
    assert list(groups(r.get_json())) == [(A, "Observation")]
    body = {"resourceType": "Parameters", "parameter": [{"name": "custodian", "valueString": B}]}
    r = world.send(world.regulator, "POST", "/fhir/$data-quality", body)
    assert r.status_code == 200
    assert {k[0] for k in groups(r.get_json())} == {B}
    none = groups(world.send(world.regulator, "GET", "/fhir/$data-quality?custodian=none").get_json())
    assert none and {k[0] for k in none} == {""} and ("", "Patient") in none      # the server's own writes


def test_everyone_else_is_refused(world):
    for token in (world.a, world.b, world.asha_token, world.son_token, world.system):
        r = world.send(token, "GET", "/fhir/$data-quality")
        assert r.status_code == 403, r.get_data(as_text=True)
        assert r.get_json()["resourceType"] == "OperationOutcome"
        r = world.http.get("/fhir/$data-quality?_format=html", headers=auth(token))
        assert r.status_code == 403 and "text/html" not in r.content_type
    assert world.http.get("/fhir/$data-quality").status_code == 401


def test_it_is_offered_at_system_level_only(world):
    assert world.send(world.regulator, "GET", "/fhir/Observation/$data-quality").status_code == 404


@pytest.mark.parametrize("ask", [{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, "_format=html"])
def test_the_html_page_shows_the_same_figures_escaped(world, ask):
    """Code systems come from clients (a hostile custodian, type or rule key: test_page.py)."""
    url, headers = ("/fhir/$data-quality?_format=html", {}) if ask == "_format=html" else ("/fhir/$data-quality", ask)
    r = world.http.get(url, headers={**auth(world.regulator), **headers})
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    page = r.get_data(as_text=True)
    assert "<script>" not in page
    assert "urn:x:&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page
    a_obs = page.split(f"<h2>{A} &middot; Observation</h2>", 1)[1].split("<h2>", 1)[0]
    assert '<td class="n">2</td><td class="n">0</td>' in a_obs           # 2 records, 0 conforming
    assert "<td>http://loinc.org</td><td class=\"n\">2</td>" in a_obs


def test_systems_the_exchange_does_not_define_count_as_other(world):
    """A writer of made-up systems cannot grow the counters (quality/facts.py OTHER_SYSTEM)."""
    made_up = [{"system": f"urn:made-up:{i}", "code": "1"} for i in range(5)]
    obs = {"resourceType": "Observation", "status": "final", "code": {"coding": made_up},
           "subject": {"reference": f"Patient/{world.ravi}"}}
    assert world.send(world.b, "POST", "/fhir/Observation", obs).status_code == 201
    found = groups(world.send(world.regulator, "GET", "/fhir/$data-quality").get_json())
    assert found[(B, "Observation")]["codeSystem"] == {"http://loinc.org": 1, HOSTILE_SYSTEM: 1, "other": 1}


def test_every_call_is_audited(world):
    assert world.send(world.regulator, "GET", "/fhir/$data-quality").status_code == 200
    assert world.send(world.a, "GET", "/fhir/$data-quality").status_code == 403
    store = world.ctx.store
    journal.drain(store, world.ctx.base)
    events = [jsonio.loads_stored(v.body) for v in store.search("AuditEvent", q.MATCH_ALL, limit=1000).items]
    ours = [e for e in events if any(c.get("code") == "$data-quality" for c in e.get("subtype", ()))]
    assert sorted(e["outcome"] for e in ours) == ["0", "4"]      # success, and the refusal (minor failure)


def test_the_capability_statement_offers_it_at_system_level(world):
    rest = world.http.get("/fhir/metadata").get_json()["rest"][0]
    assert {"name": "data-quality", "definition": "https://medport.health/fhir/OperationDefinition/data-quality"} \
        in rest["operation"]
