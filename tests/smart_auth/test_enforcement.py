"""The resource server enforces its tokens: authentication (401 for anything but a valid bearer token
of this server) and scopes (each interaction needs its scope letter on the type, 403 otherwise;
v1 and granular scopes; patient/, user/ and system/ contexts; writes stay inside the reach of the
token, transaction entries are checked one by one).

Records and tokens come from tests/smart_auth/_tokens.py: asha and ravi, each with a laboratory and
a vital-signs Observation (and more), seeded with a system/*.cruds token. Both stores (the module's
template is parametrized over STORES).
"""
from __future__ import annotations

import base64
import json

import pytest

from fhirserver.conformance import CONFORMANCE_TYPES, seed
from fhirserver.search import query as q
from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.keys import SigningKeys
from fhirserver.storage import open_store
from tests.conftest import FHIR_JSON, STORES, make_settings
from tests.smart_auth._tokens import BASE, CATEGORY, LOINC, Template, auth, coding, mint, ref


@pytest.fixture(scope="module", params=STORES)
def template(request, tmp_path_factory):
    return Template(tmp_path_factory.mktemp(f"seeded-{request.param}"), request.param)


@pytest.fixture
def app(template, tmp_path):
    return template.copy(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def s(template):
    return template.seeded


def observation_for(patient: str, **fields) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": coding(LOINC, "29463-7", "Body weight"),
            "subject": ref(f"Patient/{patient}"), "valueQuantity": {"value": 60, "unit": "kg"}, **fields}


def send(client, token: str | None, method: str, url: str, body=None, patch=None, headers=None):
    hdrs = {**(auth(token) if token else {}), **(headers or {})}
    if body is not None:
        return client.open(url, method=method, data=json.dumps(body), headers={**hdrs, "Content-Type": FHIR_JSON})
    if patch is not None:
        return client.open(url, method=method, data=json.dumps(patch),
                           headers={**hdrs, "Content-Type": "application/json-patch+json"})
    return client.open(url, method=method, headers=hdrs)


def keys_of(bundle: dict, mode: str = "match") -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", ())
            if e.get("search", {}).get("mode", "match") == mode}


def outcome_code(response) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]["code"]


def system_read(app, key: str):
    """The stored current version (None: absent), read past the access control."""
    return app.config["MEDPORT"].store.read(*key.split("/"))


def observation_count(app) -> int:
    store = app.config["MEDPORT"].store
    return store.search("Observation", q.MATCH_ALL, limit=0, total="accurate").total


# ---- authentication ------------------------------------------------------------------------------

def assert_401(response, invalid_token: bool):
    assert response.status_code == 401, response.get_data(as_text=True)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert ('error="invalid_token"' in challenge) == invalid_token, challenge
    assert outcome_code(response) == "login"


@pytest.mark.parametrize("method,url", [("GET", "/fhir/Observation"), ("GET", "/fhir/Patient/asha"), ("GET", "/fhir/_history"),
                                        ("GET", "/fhir?_type=Patient"), ("POST", "/fhir"), ("DELETE", "/fhir/Patient/ravi"),
                                        ("GET", "/fhir/Patient/asha/Observation"), ("GET", "/fhir/Patient/asha/$validate")])
def test_no_token_is_401_with_a_bearer_challenge_and_an_operation_outcome(app, client, s, method, url):
    r = send(client, None, method, url, body={"resourceType": "Bundle", "type": "batch"} if method == "POST" else None)
    assert_401(r, invalid_token=False)
    assert system_read(app, "Patient/ravi").deleted is False


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNzd29yZA==", "Bearer", "Bearer    ", "Token abc", "abc", ""])
def test_a_malformed_authorization_header_is_401(client, header):
    assert_401(client.get("/fhir/Observation", headers={"Authorization": header}), invalid_token=False)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forged(app, tmp_path, how: str) -> str:
    """Tokens this server must refuse, each wrong in one way."""
    keys = SigningKeys(app.config["MEDPORT"].store)
    good = dict(subject="user-1", client_id="app", scope="patient/*.rs", patient="asha")
    if how == "garbage":
        return "garbage"
    if how == "three garbage parts":
        return "a.b.c"
    if how == "expired":
        return tokens.issue(keys, BASE, BASE, lifetime_s=-60, **good)[0]
    if how == "another server's key":
        backend = "sqlite" if app.config["MEDPORT"].settings.store.startswith("sqlite") else "mongo"
        other = SigningKeys(open_store(make_settings(tmp_path / "other", backend)))
        return tokens.issue(other, BASE, BASE, **good)[0]
    if how == "wrong audience":
        return tokens.issue(keys, BASE, "http://other.test/fhir", **good)[0]
    if how == "wrong issuer":
        return tokens.issue(keys, "http://other.test/fhir", BASE, **good)[0]
    if how == "revoked":
        token, claims = tokens.issue(keys, BASE, BASE, **good)
        tokens.revoke(app.config["MEDPORT"].store, claims)
        return token
    if how == "revoked grant":
        token, _claims = tokens.issue(keys, BASE, BASE, grant="grant-1", **good)
        tokens.revoke_grant(app.config["MEDPORT"].store, "grant-1", 3600)
        return token
    if how == "tampered payload":
        header, payload, signature = tokens.issue(keys, BASE, BASE, **good)[0].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return ".".join((header, _b64({**claims, "scope": "system/*.cruds"}), signature))
    if how == "alg none":
        _token, claims = tokens.issue(keys, BASE, BASE, **good)
        return ".".join((_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""))
    if how == "HS256 signed with the public key":
        import hashlib
        import hmac
        _token, claims = tokens.issue(keys, BASE, BASE, **good)
        public = json.dumps(keys.jwks()["keys"][0]).encode()
        signing_input = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(claims)
        mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    raise AssertionError(how)


BAD_TOKENS = ["garbage", "three garbage parts", "expired", "another server's key", "wrong audience", "wrong issuer",
              "revoked", "revoked grant", "tampered payload", "alg none", "HS256 signed with the public key"]


@pytest.mark.parametrize("how", BAD_TOKENS)
def test_an_invalid_token_is_401(app, client, tmp_path, how):
    token = forged(app, tmp_path, how)
    for method, url in (("GET", "/fhir/Observation"), ("GET", "/fhir/Patient/asha"), ("DELETE", "/fhir/Patient/asha")):
        assert_401(send(client, token, method, url), invalid_token=True)
    assert system_read(app, "Patient/asha").deleted is False


def test_a_token_stops_working_once_revoked(app, client):
    token, claims = tokens.issue(SigningKeys(app.config["MEDPORT"].store), BASE, BASE, "user-1", "app", "patient/*.rs",
                                 patient="asha")
    assert client.get("/fhir/Patient/asha", headers=auth(token)).status_code == 200
    tokens.revoke(app.config["MEDPORT"].store, claims)
    assert_401(client.get("/fhir/Patient/asha", headers=auth(token)), invalid_token=True)


@pytest.mark.parametrize("scope", ["patient/Observation.rx", "patient/Foo.rs", "patient/Observation.rs?", "user/*.sr",
                                   "patient/Observation.read?category=laboratory"])
def test_a_signed_token_with_a_malformed_scope_is_refused_not_a_server_error(app, client, s, scope):
    """The token is genuine (this server's key), its scope string breaks the grammar: the request is
    refused (401 invalid_token or 403), with an OperationOutcome; it must not fail with a 500."""
    token = mint(app, scope, patient="asha")
    for url in ("/fhir/Observation", f"/fhir/{s.named['asha.lab']}", "/fhir/_history"):
        r = client.get(url, headers=auth(token))
        # RFC 6750 3.1 allows invalid_token (401) or insufficient_scope (403) for a scope it cannot read
        assert r.status_code in (401, 403), f"{scope}: GET {url} -> {r.status_code} {r.get_data(as_text=True)[:200]}"
        assert r.get_json()["resourceType"] == "OperationOutcome"


def test_a_patient_scope_without_a_patient_in_context_reaches_nothing(app, client, s):
    token = mint(app, "patient/*.cruds")
    assert keys_of(send(client, token, "GET", "/fhir/Observation").get_json()) == set()
    assert send(client, token, "GET", f"/fhir/{s.named['asha.lab']}").status_code == 404
    # definitions (conformance.CONFORMANCE_TYPES) are public standards, read by every token: nothing else
    history = send(client, token, "GET", "/fhir/_history").get_json().get("entry") or ()
    assert {e["resource"]["resourceType"] for e in history} <= CONFORMANCE_TYPES
    assert send(client, token, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 403
    assert send(client, token, "DELETE", f"/fhir/{s.named['asha.lab']}").status_code == 404
    assert unchanged(app, s)


def test_system_history_shows_only_what_the_token_may_search(app, client, s):
    """history-system needs 's' on each type it shows: a read-only grant sees no system history."""
    r = send(client, mint(app, "patient/Observation.r", patient="asha"), "GET", "/fhir/_history")
    assert r.status_code in (200, 403)     # refused, or an empty page: SMART fixes neither
    if r.status_code == 200:
        assert not r.get_json().get("entry")
    r = send(client, mint(app, "patient/Observation.s", patient="asha"), "GET", "/fhir/_history")
    assert {e["fullUrl"].split("/fhir/")[1] for e in r.get_json()["entry"]} == s.of("asha", "Observation")


def test_the_bearer_scheme_is_case_insensitive(app, client):
    token = mint(app, "patient/*.rs", patient="asha")
    assert client.get("/fhir/Patient/asha", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_metadata_and_discovery_are_open(client):
    r = client.get("/fhir/metadata")
    assert r.status_code == 200 and r.get_json()["resourceType"] == "CapabilityStatement"
    r = client.get("/fhir/.well-known/smart-configuration")
    assert r.status_code == 200 and "token_endpoint" in r.get_json()


def test_a_path_that_only_begins_like_an_open_one_needs_a_token(client):
    """bearer.is_open names whole paths (and two folders): a route added later under a longer name is
    closed until it is named, instead of answering without a token with unrestricted rights."""
    for path in ("/fhir/metadataX", "/fhir/metadata/x", "/fhir/docsx", "/fhir/openapi.jsonx",
                 "/fhir/$verify-health-cards", "/fhir/.well-knownx"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path
    assert client.get("/fhir/docs/static/swagger-ui.css").status_code != 401


# ---- scope letters -------------------------------------------------------------------------------

LANGUAGE_PATCH = [{"op": "add", "path": "/language", "value": "en"}]


def interaction_request(s, interaction: str):
    """(method, url, body, patch, success status) of one interaction on asha's lab result."""
    lab = s.named["asha.lab"]
    return {
        "create": ("POST", "/fhir/Observation", observation_for("asha"), None, 201),
        "read": ("GET", f"/fhir/{lab}", None, None, 200),
        "vread": ("GET", f"/fhir/{lab}/_history/1", None, None, 200),
        "history-instance": ("GET", f"/fhir/{lab}/_history", None, None, 200),
        "update": ("PUT", f"/fhir/{lab}", observation_for("asha", id=s.id("asha.lab")), None, 200),
        "patch": ("PATCH", f"/fhir/{lab}", None, LANGUAGE_PATCH, 200),
        "delete": ("DELETE", f"/fhir/{lab}", None, None, 204),
        "search-type": ("GET", "/fhir/Observation", None, None, 200),
        "search-type (POST)": ("POST", "/fhir/Observation/_search", None, None, 200),
        "search-compartment": ("GET", "/fhir/Patient/asha/Observation", None, None, 200),
        "search-system": ("GET", "/fhir?_type=Observation", None, None, 200),
        "history-type": ("GET", "/fhir/Observation/_history", None, None, 200),
        "conditional create": ("POST", "/fhir/Observation", observation_for("asha"), None, 201),
        "conditional update": ("PUT", f"/fhir/Observation?_id={s.id('asha.lab')}",
                               observation_for("asha", id=s.id("asha.lab")), None, 200),
        "conditional delete": ("DELETE", f"/fhir/Observation?_id={s.id('asha.lab')}", None, None, 204),
    }[interaction]


LETTER = {"create": "c", "read": "r", "vread": "r", "history-instance": "r", "update": "u", "patch": "u", "delete": "d",
          "search-type": "s", "search-type (POST)": "s", "search-compartment": "s", "search-system": "s",
          "history-type": "s",
          # conditional interactions run a search: they need 's' too, and If-None-Exist returns the match ('r')
          "conditional create": "crs", "conditional update": "us", "conditional delete": "ds"}


def run(client, token, s, interaction):
    method, url, body, patch, ok = interaction_request(s, interaction)
    headers = {"If-None-Exist": "identifier=http://lab.test/observation|none"} if interaction == "conditional create" else {}
    if interaction == "search-type (POST)":
        r = client.post(url, data="", headers={**auth(token), "Content-Type": "application/x-www-form-urlencoded"})
    else:
        r = send(client, token, method, url, body=body, patch=patch, headers=headers)
    return r, ok


def unchanged(app, s) -> bool:
    v = system_read(app, s.named["asha.lab"])
    return v.version == 1 and not v.deleted


@pytest.mark.parametrize("interaction", list(LETTER))
def test_each_interaction_needs_its_scope_letter(app, client, s, interaction):
    letters = LETTER[interaction]
    before = observation_count(app)
    for letter in letters:          # without any one of the letters it needs: 403, nothing changes
        others = "".join(x for x in "cruds" if x != letter)
        r, _ok = run(client, mint(app, f"patient/Observation.{others}", patient="asha"), s, interaction)
        assert r.status_code == 403, f"patient/Observation.{others}: {interaction} -> {r.status_code} {r.get_data(as_text=True)}"
        assert outcome_code(r) == "forbidden"
        assert unchanged(app, s), f"{interaction} without '{letter}' changed asha's lab result"
        assert observation_count(app) == before
    r, ok = run(client, mint(app, f"patient/Observation.{letters}", patient="asha"), s, interaction)
    assert r.status_code == ok, f"patient/Observation.{letters}: {interaction} -> {r.status_code} {r.get_data(as_text=True)}"


@pytest.mark.parametrize("interaction", list(LETTER))
def test_an_interaction_on_a_type_the_token_does_not_name_is_403(app, client, s, interaction):
    before = observation_count(app)
    r, _ok = run(client, mint(app, "patient/Condition.cruds patient/Patient.cruds", patient="asha"), s, interaction)
    assert r.status_code == 403, f"{interaction} -> {r.status_code} {r.get_data(as_text=True)}"
    assert outcome_code(r) == "forbidden"
    assert unchanged(app, s) and observation_count(app) == before


def test_v1_scopes_are_the_v2_letters(app, client, s):
    """read = rs, write = cud, * = cruds (App Launch 2.2 'Scopes for requesting clinical data')."""
    requests = [("GET", f"/fhir/{s.named['asha.lab']}"), ("GET", f"/fhir/{s.named['ravi.lab']}"),
                ("GET", "/fhir/Observation"), ("GET", f"/fhir/{s.named['asha.lab']}/_history"),
                ("GET", "/fhir/Observation/_history"), ("GET", "/fhir/Patient/asha/Observation"),
                ("GET", f"/fhir/{s.named['asha.condition']}")]
    for v1, v2 in (("patient/Observation.read", "patient/Observation.rs"), ("patient/*.read", "patient/*.rs")):
        t1, t2 = mint(app, v1, patient="asha"), mint(app, v2, patient="asha")
        for method, url in requests:
            a, b = send(client, t1, method, url), send(client, t2, method, url)
            assert (a.status_code, keys_of(a.get_json() or {})) == (b.status_code, keys_of(b.get_json() or {})), \
                f"{v1} and {v2} differ on {method} {url}: {a.status_code} / {b.status_code}"
    read = mint(app, "patient/Observation.read", patient="asha")
    assert send(client, read, "GET", f"/fhir/{s.named['asha.lab']}").status_code == 200
    assert send(client, read, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 403
    assert send(client, read, "PUT", f"/fhir/{s.named['asha.lab']}",
                body=observation_for("asha", id=s.id("asha.lab"))).status_code == 403
    write = mint(app, "patient/Observation.write", patient="asha")
    assert send(client, write, "GET", f"/fhir/{s.named['asha.lab']}").status_code == 403
    assert send(client, write, "GET", "/fhir/Observation").status_code == 403
    assert send(client, write, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 201
    everything = mint(app, "patient/Observation.*", patient="asha")
    assert send(client, everything, "GET", "/fhir/Observation").status_code == 200
    assert send(client, everything, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 201


def test_a_granular_scope_limits_search_and_read_to_its_query(app, client, s):
    token = mint(app, f"patient/Observation.rs?category={CATEGORY}|laboratory", patient="asha")
    r = send(client, token, "GET", "/fhir/Observation")
    assert r.status_code == 200 and keys_of(r.get_json()) == {s.named["asha.lab"]}
    assert r.get_json()["total"] == 1
    r = send(client, token, "GET", "/fhir/Observation?_summary=count")
    assert r.get_json()["total"] == 1
    r = send(client, token, "GET", f"/fhir/Observation?code={LOINC}|8867-4")
    assert keys_of(r.get_json()) == set()
    assert send(client, token, "GET", f"/fhir/{s.named['asha.lab']}").status_code == 200
    vital = send(client, token, "GET", f"/fhir/{s.named['asha.vital']}")
    assert vital.status_code == 404 and outcome_code(vital) == "not-found"
    assert send(client, token, "GET", f"/fhir/{s.named['asha.vital']}/_history").status_code == 404
    assert send(client, token, "GET", f"/fhir/{s.named['asha.vital']}/_history/1").status_code == 404
    # the patient compartment still applies: ravi's laboratory result is out of reach
    assert send(client, token, "GET", f"/fhir/{s.named['ravi.lab']}").status_code == 404
    r = send(client, token, "GET", "/fhir/Observation/_history")
    assert {e["fullUrl"].split("/fhir/")[1] for e in r.get_json().get("entry", ())} == {s.named["asha.lab"]}
    r = send(client, token, "GET", "/fhir/Patient/asha/Observation")
    assert keys_of(r.get_json()) == {s.named["asha.lab"]}


def test_a_practitioners_user_scopes_see_both_patients(app, client, s):
    Users(app.config["MEDPORT"].store).add("meera", "long enough pw", "practitioner", "Practitioner/prac-1")
    token = mint(app, "user/*.rs", subject="meera", role="practitioner", fhirUser="Practitioner/prac-1")
    r = send(client, token, "GET", "/fhir/Observation")
    assert keys_of(r.get_json()) == s.of("asha", "Observation") | s.of("ravi", "Observation")
    assert keys_of(send(client, token, "GET", "/fhir/Patient").get_json()) == {"Patient/asha", "Patient/ravi"}
    assert send(client, token, "GET", f"/fhir/{s.named['ravi.lab']}").status_code == 200
    assert send(client, token, "GET", "/fhir/Organization/org-city").status_code == 200
    assert send(client, token, "POST", "/fhir/Observation", body=observation_for("ravi")).status_code == 403


@pytest.mark.parametrize("context", [{}, {"patient": "asha"}, {"patient": "ravi"}])
def test_a_patient_users_user_scopes_are_confined_to_their_own_compartment(app, client, s, context):
    """role patient with fhirUser Patient/asha: user/ scopes act on asha's compartment only (even when
    the token's patient claim names someone else)."""
    Users(app.config["MEDPORT"].store).add("asha-login", "long enough pw", "patient", "Patient/asha")
    token = mint(app, "user/*.cruds", subject="asha-login", role="patient", fhirUser=f"{BASE}/Patient/asha", **context)
    r = send(client, token, "GET", "/fhir/Observation")
    assert keys_of(r.get_json()) == s.of("asha", "Observation")
    assert keys_of(send(client, token, "GET", "/fhir/Patient").get_json()) == {"Patient/asha"}
    assert send(client, token, "GET", f"/fhir/{s.named['ravi.lab']}").status_code == 404
    assert send(client, token, "GET", "/fhir/Patient/ravi").status_code == 404
    assert send(client, token, "GET", "/fhir/Organization/org-city").status_code == 404
    assert send(client, token, "POST", "/fhir/Observation", body=observation_for("ravi")).status_code == 403
    assert send(client, token, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 201
    assert send(client, token, "DELETE", f"/fhir/{s.named['ravi.lab']}").status_code == 404
    assert not system_read(app, s.named["ravi.lab"]).deleted


def test_system_read_scopes_see_everything(app, client, s):
    token = mint(app, "system/*.rs", subject="backend", client_id="backend")
    r = send(client, token, "GET", "/fhir/Observation")
    assert keys_of(r.get_json()) == s.of("asha", "Observation") | s.of("ravi", "Observation")
    everything = send(client, token, "GET", "/fhir/_history?_count=1000").get_json()
    # written by the server at start-up (fhirserver/uhid/naming_system.py, fhirserver/conformance/seed.py)
    server_own = {"NamingSystem/uhid"} | seed.keys()
    seen = {e["fullUrl"].split("/fhir/")[1] for e in everything["entry"]}
    # and the audit trail of every request so far (docs/audit.md): system scopes see it too
    assert {k for k in seen if not k.startswith("AuditEvent/")} == set(s.owner) | server_own
    assert any(k.startswith("AuditEvent/") for k in seen)
    for key in s.owner:
        assert send(client, token, "GET", f"/fhir/{key}", headers={"Accept": FHIR_JSON}).status_code == 200, key
    assert send(client, token, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 403


# ---- writes stay inside the token's reach ----------------------------------------------------------

def test_a_patient_token_writes_into_its_own_compartment_only(app, client, s):
    token = mint(app, "patient/*.cruds", patient="asha")
    before = observation_count(app)
    assert send(client, token, "POST", "/fhir/Observation", body=observation_for("asha")).status_code == 201
    r = send(client, token, "POST", "/fhir/Observation", body=observation_for("ravi"))
    assert r.status_code == 403 and outcome_code(r) == "forbidden"
    no_subject = {k: v for k, v in observation_for("asha").items() if k != "subject"}
    assert send(client, token, "POST", "/fhir/Observation", body=no_subject).status_code == 403
    r = send(client, token, "POST", "/fhir/Patient", body={"resourceType": "Patient", "name": [{"family": "New"}]})
    assert r.status_code == 403 and outcome_code(r) == "forbidden"
    # asha's own record cannot be moved out of her compartment
    moved = observation_for("ravi", id=s.id("asha.lab"))
    assert send(client, token, "PUT", f"/fhir/{s.named['asha.lab']}", body=moved).status_code == 403
    r = send(client, token, "PATCH", f"/fhir/{s.named['asha.lab']}",
             patch=[{"op": "replace", "path": "/subject", "value": ref("Patient/ravi")}])
    assert r.status_code == 403
    assert observation_count(app) == before + 1
    assert system_read(app, s.named["asha.lab"]).version == 1


def entry(resource: dict | None, method: str, url: str) -> dict:
    out = {"request": {"method": method, "url": url}}
    if resource is not None:
        out["resource"] = resource
    return out


@pytest.mark.parametrize("outside", ["create for ravi", "update ravi's patient", "delete ravi's lab result",
                                     "create a Condition (type not granted)", "patch ravi's lab result"])
def test_a_transaction_with_one_entry_outside_the_scope_fails_entirely(app, client, s, outside):
    token = mint(app, "patient/Observation.cruds patient/Patient.rs", patient="asha")
    lab = s.named["ravi.lab"]
    bad = {
        "create for ravi": entry(observation_for("ravi"), "POST", "Observation"),
        "update ravi's patient": entry({"resourceType": "Patient", "id": "ravi", "name": [{"family": "Changed"}]},
                                       "PUT", "Patient/ravi"),
        "delete ravi's lab result": entry(None, "DELETE", lab),
        "create a Condition (type not granted)": entry({"resourceType": "Condition", "subject": ref("Patient/asha")},
                                                       "POST", "Condition"),
        "patch ravi's lab result": entry({"resourceType": "Binary", "contentType": "application/json-patch+json",
                                          "data": base64.b64encode(json.dumps(LANGUAGE_PATCH).encode()).decode()},
                                         "PATCH", lab),
    }[outside]
    before = observation_count(app)
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [entry(observation_for("asha"), "POST", "Observation"), bad,
                        entry(observation_for("asha", id=s.id("asha.lab")), "PUT", s.named["asha.lab"])]}
    r = send(client, token, "POST", "/fhir", body=bundle)
    # security.html: a server may answer 404 rather than 403 so as not to reveal that a record exists
    assert r.status_code in (403, 404), r.get_data(as_text=True)
    assert outcome_code(r) in ("forbidden", "not-found")
    assert "Bundle.entry[1]" in r.get_json()["issue"][0]["diagnostics"]
    assert observation_count(app) == before, "a failed transaction stored something"
    assert system_read(app, s.named["asha.lab"]).version == 1
    for key in (lab, "Patient/ravi"):
        v = system_read(app, key)
        assert v.version == 1 and not v.deleted, key


def test_a_batch_answers_each_entry_on_its_own(app, client, s):
    token = mint(app, "patient/Observation.cruds patient/Patient.rs", patient="asha")
    before = observation_count(app)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        entry(observation_for("asha"), "POST", "Observation"),
        entry(observation_for("ravi"), "POST", "Observation"),
        entry(None, "GET", s.named["asha.lab"]),
        entry(None, "GET", s.named["ravi.lab"]),
        entry(None, "DELETE", s.named["ravi.lab"]),
        entry({"resourceType": "Condition", "subject": ref("Patient/asha")}, "POST", "Condition"),
        entry(None, "GET", "Observation?_summary=count"),
    ]}
    r = send(client, token, "POST", "/fhir", body=bundle)
    assert r.status_code == 200, r.get_data(as_text=True)
    statuses = [e["response"]["status"].split()[0] for e in r.get_json()["entry"]]
    assert statuses == ["201", "403", "200", "404", "404", "403", "200"]
    assert r.get_json()["entry"][6]["resource"]["total"] == len(s.of("asha", "Observation")) + 1
    assert observation_count(app) == before + 1
    assert not system_read(app, s.named["ravi.lab"]).deleted


def test_a_disabled_users_tokens_stop_working_at_once(app, client, s):
    users = Users(app.config["MEDPORT"].store)
    users.add("meera", "long enough pw", "practitioner", "Practitioner/prac-1")
    token = mint(app, "user/*.rs", subject="meera", role="practitioner", fhirUser="Practitioner/prac-1")
    assert send(client, token, "GET", "/fhir/Patient").status_code == 200
    users.disable("meera")
    r = send(client, token, "GET", "/fhir/Patient")
    assert r.status_code == 401 and "disabled" in r.get_json()["issue"][0]["diagnostics"]
    ghost = mint(app, "user/*.rs", subject="nobody", role="practitioner", fhirUser="Practitioner/prac-1")
    assert send(client, ghost, "GET", "/fhir/Patient").status_code == 401
