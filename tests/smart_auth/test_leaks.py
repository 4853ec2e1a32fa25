"""Leak tests: a patient token cannot reach another patient's records through any path.

The requirement: "patient/ scopes confine every result to that patient's compartment, inside the
query: search, _include/_revinclude (:iterate too), chains, _has, history, compartment search,
conditional interactions ... No existence oracle: a resource outside the token's reach answers the
same as one that does not exist."

PATHS below is the one table of every way data leaves the server. Each path runs with asha's token
(patient/*.rs, then patient/*.cruds) against the same seeded records (tests/smart_auth/_tokens.py),
and after it, whatever the path asserts itself, every response it got is checked:

- no resource of ravi's (by type and id) anywhere in the body, Bundles and their entries walked
  recursively (includes, batch/transaction responses, nested searchsets, history);
- no trace of ravi's records in any body or header (his ids, names, MRN, identifiers, the
  RAVI-PRIVATE marker his records carry, his Binary's data), OperationOutcome diagnostics included,
  unless the request itself named it;
- no 5xx; Bundle.total equals the number of matches a single page shows (a total that counts
  ravi's data is a leak);
- ravi's records are as seeded: no path changes or deletes them, or adds to his compartment.

Paths that touch ravi's ids also send the same request for an id that does not exist, and the two
answers must not differ (status, header names, OperationOutcome issues with the id blanked out).
test_the_table_covers_every_route checks that the table exercises every FHIR route of the app, or
that the route is listed in OPEN with the reason it needs no token.
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import unquote_plus, urlencode, urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from fhirserver.conformance import seed
from fhirserver.search import query as q
from fhirserver.search.compartment import compartment_clause
from tests.conftest import FHIR_JSON, STORES
from tests.smart_auth._tokens import BIRTH_DATE, LAB_IDS, LOINC, MRN, RAVI_MARK, Template, auth, coding, mint, ref

SCOPES = ("patient/*.rs", "patient/*.cruds")
# every request of a path leaves the requester's own AuditEvents (echoing its own queries, visible to it):
# the table knows only what was seeded, so these servers record only the sensitive acts; who sees which
# AuditEvents is proven in tests/audit_log/test_auditevent_search.py
LEAK_SETTINGS = {"audit_access": "off"}

# the FHIR routes of the app, as "METHOD rule"
READ = "GET /fhir/<rtype:type>/<id>"
UPDATE = "PUT /fhir/<rtype:type>/<id>"
PATCH = "PATCH /fhir/<rtype:type>/<id>"
DELETE = "DELETE /fhir/<rtype:type>/<id>"
VREAD = "GET /fhir/<rtype:type>/<id>/_history/<vid>"
INSTANCE_HISTORY = "GET /fhir/<rtype:type>/<id>/_history"
TYPE_HISTORY = "GET /fhir/<rtype:type>/_history"
SYSTEM_HISTORY = "GET /fhir/_history"
TYPE_SEARCH = "GET /fhir/<rtype:type>"
TYPE_SEARCH_POST = "POST /fhir/<rtype:type>/_search"
CREATE = "POST /fhir/<rtype:type>"
CONDITIONAL_UPDATE = "PUT /fhir/<rtype:type>"
CONDITIONAL_DELETE = "DELETE /fhir/<rtype:type>"
CONDITIONAL_PATCH = "PATCH /fhir/<rtype:type>"
COMPARTMENT = "GET /fhir/<rtype:type>/<id>/<rtype:target>"
SYSTEM_SEARCH = "GET /fhir/"
SYSTEM_SEARCH_POST = "POST /fhir/_search"
BATCH = "POST /fhir/"
SYSTEM_OP_GET = "GET /fhir/$<name>"
SYSTEM_OP_POST = "POST /fhir/$<name>"
TYPE_OP_GET = "GET /fhir/<rtype:type>/$<name>"
TYPE_OP_POST = "POST /fhir/<rtype:type>/$<name>"
INSTANCE_OP_GET = "GET /fhir/<rtype:type>/<id>/$<name>"
INSTANCE_OP_POST = "POST /fhir/<rtype:type>/<id>/$<name>"

# routes that answer without a token (smart_auth/bearer.py OPEN_PATHS), and why that leaks nothing
OPEN = {
    "GET /fhir/metadata": "the CapabilityStatement is public (SMART App Launch 2.2 Conformance); no records",
    "GET /fhir/.well-known/smart-configuration": "SMART discovery document, public by the spec; no records",
    "GET /fhir/.well-known/openid-configuration": "OpenID discovery document, public by the spec; no records",
    "GET /fhir/openapi.json": "the OpenAPI description of the API; no records",
    "GET /fhir/docs": "the Swagger UI page; no records",
    "GET /fhir/docs/static/<path:name>": "the Swagger UI's static files; no records",
    "GET /fhir/.well-known/jwks.json": "the health card issuer's public keys, public by the SMART Health Cards spec",
    "GET /fhir/.well-known/crl/<kid>.json": "health card revocation lists: opaque per-patient ids (HMAC) and "
                                            "timestamps, public by the SMART Health Cards spec",
    "POST /fhir/$verify-health-card": "checks the card it is sent and answers only from that card and the issuer "
                                      "keys: a verifier needs no account (tests/health_cards/test_card_api.py)",
}

# types seeded for both patients, all in the Patient compartment
COMPARTMENT_TYPES = ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "DiagnosticReport",
                     "Provenance", "RelatedPerson", "Communication")
# also seeded, outside the compartment: invisible under patient/ scopes, except a patient's own Binary
# (its securityContext is her Patient: governance/binary_context.py)
OUTSIDE_TYPES = ("Binary", "Organization", "Practitioner")
OWN_BY_CONTEXT = ("Binary",)
# written by the server at the init step (uhid/naming_system.py, conformance/seed.py): every token reads them
SERVER_DEFINITIONS = frozenset({"NamingSystem/uhid"} | seed.keys())
TYPES = COMPARTMENT_TYPES + OUTSIDE_TYPES
# ravi's lab Observation is referenced by asha's 'derived' Observation: its id is asha's data too
# (the resource itself must still never appear)
KNOWN_TO_ASHA = ("ravi.lab",)
VOLATILE_HEADERS = {"date", "x-request-id", "content-length", "last-modified"}


# ---- the harness ---------------------------------------------------------------------------------

@dataclass
class Exchange:
    method: str
    url: str
    sent: str            # everything the request said (url, body, headers): what it may see echoed
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in self.headers.items())

    def __str__(self):
        return f"{self.method} {unquote_plus(self.url)} -> {self.status}"


class H:
    """One path's run: asha's requests (recorded and checked), ravi's records, the system view."""

    def __init__(self, app, seeded, scope: str):
        self.app, self.s, self.scope = app, seeded, scope
        self.client = app.test_client()
        self.token = mint(app, scope, patient="asha")
        self.system = auth(mint(app, "system/*.cruds"))      # setup and checks only, never recorded
        self.adapter = app.url_map.bind("fhir.test")
        self.exchanges: list[Exchange] = []
        self.routes: set[str] = set()
        self.problems: list[str] = []
        self.snapshot = self.ravi_state()

    @property
    def writes(self) -> bool:
        return self.scope.endswith("cruds")

    # -- requests as asha
    def call(self, method: str, url: str, *, body=None, form=None, patch=None, headers=None, status=None) -> Exchange:
        hdrs, data = dict(headers or {}), None
        if body is not None:
            data = json.dumps(body)
            hdrs.setdefault("Content-Type", FHIR_JSON)
        if form is not None:
            data = urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if patch is not None:
            data = json.dumps(patch)
            hdrs["Content-Type"] = "application/json-patch+json"
        r = self.client.open(url, method=method, data=data, headers={**auth(self.token), **hdrs})
        ex = Exchange(method, url, unquote_plus(url) + "\n" + unquote_plus(data or "") + "\n" + "\n".join(hdrs.values()),
                      r.status_code, dict(r.headers), r.get_data())
        self.exchanges.append(ex)
        try:
            rule, _args = self.adapter.match(urlsplit(url).path, method, return_rule=True)
            self.routes.add(f"{method} {rule.rule}")
        except HTTPException:
            pass
        if status is not None and r.status_code not in (status if isinstance(status, tuple) else (status,)):
            self.problem(f"{ex}: expected status {status}; body {ex.body[:300]!r}")
        return ex

    def get(self, url: str, **kw) -> Exchange:
        return self.call("GET", url, **kw)

    def search(self, url: str, form=None) -> Exchange:
        return self.call("POST", url, form=form, status=200) if form is not None else self.get(url, status=200)

    def follow(self, url: str) -> list[Exchange]:
        """A search or history and every page after it (its next links)."""
        pages = [self.get(url, status=200)]
        while True:
            nxt = [link["url"] for link in (pages[-1].json or {}).get("link", ()) if link["relation"] == "next"]
            if not nxt or len(pages) > 50:
                return pages
            parts = urlsplit(nxt[0])
            pages.append(self.get(parts.path + "?" + parts.query, status=200))

    def same_as_absent(self, send: Callable[..., Exchange], *real: str) -> tuple[Exchange, Exchange]:
        """send(*ids) with ravi's ids, then with ids that exist nowhere: the answers must be alike."""
        fresh = tuple(str(uuid.uuid4()) for _ in real)
        a, b = send(*real), send(*fresh)
        if signature(a, real) != signature(b, fresh):
            self.problem(f"existence oracle: {a} differs from the same request for a nonexistent id, {b}:\n"
                         f"  ravi's:  {signature(a, real)}\n  absent:  {signature(b, fresh)}")
        return a, b

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.problem(message)

    def problem(self, message: str) -> None:
        self.problems.append(message)

    # -- the seeded records
    def key(self, role: str) -> str:
        return self.s.named[role]

    def id(self, role: str) -> str:
        return self.s.id(role)

    def visible(self, rtype: str | None = None) -> set[str]:
        """What asha's token should see: her compartment and her own Binary (other types are invisible)."""
        return {k for k in self.s.of("asha", rtype) if k.split("/")[0] in COMPARTMENT_TYPES + OWN_BY_CONTEXT}

    def listed(self) -> set[str]:
        """What the system history shows her: what she sees, and the server's definitions (public
        standards that every token reads: smart_auth/access.py)."""
        return self.visible() | SERVER_DEFINITIONS

    def ravi(self, *types: str) -> list[str]:
        return sorted(k for k in self.s.of("ravi") if not types or k.split("/")[0] in types)

    # -- the system's view (not recorded)
    def system_call(self, method: str, url: str, body=None):
        headers = {**self.system, "Accept": FHIR_JSON}
        if body is None:
            return self.client.open(url, method=method, headers=headers)
        return self.client.open(url, method=method, json=body, headers={**headers, "Content-Type": FHIR_JSON})

    def ravi_state(self) -> dict:
        """Version and deletion of every resource of ravi's, and every member of his compartment."""
        store = self.app.config["MEDPORT"].store
        state = {}
        for key in self.ravi():
            v = store.read(*key.split("/"))
            state[key] = (v.version, v.deleted) if v else None
        for rtype in COMPARTMENT_TYPES[1:]:
            query = q.And((compartment_clause("Patient", "ravi", rtype),))
            for v in store.search(rtype, query, limit=1000, total="none").items:
                state[f"{rtype}/{v.id}"] = (v.version, v.deleted)
        return state

    def resnapshot(self) -> None:
        """After a setup step that changed ravi's records with the system token."""
        self.snapshot = self.ravi_state()


def signature(ex: Exchange, ids: tuple[str, ...]):
    """What must not tell a resource out of reach from one that does not exist."""
    def blank(value):
        if isinstance(value, str):
            for i, x in enumerate(ids):
                value = value.replace(x, f"<id{i}>")
            return value
        if isinstance(value, list):
            return [blank(v) for v in value]
        if isinstance(value, dict):
            return {k: ("<time>" if k in ("lastModified", "lastUpdated") else blank(v)) for k, v in value.items()}
        return value
    names = sorted(k.lower() for k in ex.headers if k.lower() not in VOLATILE_HEADERS)
    body = ex.json
    return ex.status, names, blank(body) if body is not None else blank(ex.body.decode("utf-8", "replace"))


def matches(ex: Exchange, mode: str = "match") -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in (ex.json or {}).get("entry", ())
            if "resource" in e and e.get("search", {}).get("mode", "match") == mode]


def history_keys(ex: Exchange) -> list[str]:
    return [e["fullUrl"].split("/fhir/", 1)[1] for e in (ex.json or {}).get("entry", ())]


def resources(value):
    """Every resource nested anywhere in a JSON value (Bundle entries, outcomes, contained...)."""
    if isinstance(value, dict):
        if isinstance(value.get("resourceType"), str):
            yield value
        for v in value.values():
            yield from resources(v)
    elif isinstance(value, list):
        for v in value:
            yield from resources(v)


def check_responses(h: H) -> None:
    """The checks every path gets, over every response asha's token received."""
    ravi_keys = set(h.ravi())
    traces = set(h.s.fingerprints["ravi"]) | {RAVI_MARK}
    traces |= {k.split("/", 1)[1] for k in ravi_keys if k.split("/")[0] != "Patient"}
    traces -= {h.id(role) for role in KNOWN_TO_ASHA}
    traces.add(base64.b64encode(f"{RAVI_MARK} scanned letter".encode()).decode())
    for ex in h.exchanges:
        if ex.status >= 500:
            h.problem(f"{ex}: server error {ex.body[:300]!r}")
        leaked = sorted(t for t in traces if t in ex.text and t not in ex.sent)
        if leaked:
            h.problem(f"{ex}: the response shows {leaked}: {ex.text[:600]}")
        for r in resources(ex.json):
            key = f"{r['resourceType']}/{r.get('id')}"
            if key in ravi_keys:
                h.problem(f"{ex}: the response holds ravi's {key}")
            if r["resourceType"] == "Bundle":
                check_total(h, ex, r)
    after = h.ravi_state()
    if after != h.snapshot:
        changed = {k: (h.snapshot.get(k), after.get(k)) for k in set(after) | set(h.snapshot)
                   if after.get(k) != h.snapshot.get(k)}
        h.problem(f"ravi's records changed (version, deleted) before -> after: {changed}")


def check_total(h: H, ex: Exchange, bundle: dict) -> None:
    """A single-page searchset or history must count exactly what it shows."""
    links = {link["relation"]: link["url"] for link in bundle.get("link", ())}
    this = links.get("self", "")
    if "total" not in bundle or "next" in links or any(p in this for p in ("_cursor=", "_summary=count", "_count=0")):
        return
    entries = bundle.get("entry", ())
    if bundle["type"] == "searchset":
        shown = sum(1 for e in entries if e.get("search", {}).get("mode", "match") == "match")
    elif bundle["type"] == "history":
        shown = len(entries)
    else:
        return
    if bundle["total"] != shown:
        h.problem(f"{ex}: Bundle.total {bundle['total']} but {shown} matches in a single page ({this})")


# ---- the table -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Path:
    name: str
    routes: tuple[str, ...]
    run: Callable[[H], None] = field(compare=False)


PATHS: list[Path] = []


def path(name: str, *routes: str):
    def register(fn):
        PATHS.append(Path(name, routes, fn))
        return fn
    return register


def qs(**params) -> str:
    return urlencode(params)


def observation_for(patient: str, **fields) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": coding(LOINC, "29463-7", "Body weight"),
            "subject": ref(f"Patient/{patient}"), "valueQuantity": {"value": 60, "unit": "kg"}, **fields}


def expect_search(h: H, url: str, match: set[str], included: set[str] | None = None, form=None) -> Exchange:
    ex = h.search(url, form)
    h.expect(set(matches(ex)) == match, f"{ex}: matches {sorted(matches(ex))}, expected {sorted(match)}")
    if included is not None:
        got = set(matches(ex, "include"))
        h.expect(got == included, f"{ex}: included {sorted(got)}, expected {sorted(included)}")
    return ex


def expect_total(h: H, url: str, total: int) -> Exchange:
    ex = h.get(url, status=200)
    body = ex.json or {}
    h.expect(body.get("total") == total and not body.get("entry"),
             f"{ex}: total {body.get('total')} with {len(body.get('entry', ()))} entries, expected total {total}")
    return ex


@path("read", READ)
def read_path(h: H):
    h.get(f"/fhir/{h.key('asha.lab')}", status=200)
    h.get("/fhir/Patient/asha", status=200)
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}"), rid)


@path("read: Binary contents, raw and as FHIR JSON", READ, VREAD)
def binary_path(h: H):
    rid = h.id("ravi.binary")
    for accept in ("*/*", "application/octet-stream", "text/plain", FHIR_JSON):
        h.same_as_absent(lambda x, a=accept: h.get(f"/fhir/Binary/{x}", headers={"Accept": a}), rid)
        h.same_as_absent(lambda x, a=accept: h.get(f"/fhir/Binary/{x}/_history/1", headers={"Accept": a}), rid)
    h.same_as_absent(lambda x: h.get(f"/fhir/Binary/{x}", headers={"Accept": "text/plain", "Range": "bytes=0-3"}), rid)


@path("HEAD and OPTIONS on ravi's resources")
def head_options_path(h: H):
    for key in (h.key("ravi.lab"), "Patient/ravi", h.key("ravi.binary")):
        rtype, rid = key.split("/")
        for method in ("HEAD", "OPTIONS"):
            h.same_as_absent(lambda x, t=rtype, m=method: h.call(m, f"/fhir/{t}/{x}"), rid)
            h.same_as_absent(lambda x, t=rtype, m=method: h.call(m, f"/fhir/{t}/{x}/_history"), rid)
            h.same_as_absent(lambda x, t=rtype, m=method: h.call(m, f"/fhir/{t}/{x}/_history/1"), rid)


@path("read and vread: _elements, _summary, _format, _pretty, conditional read headers on ravi's ids", READ, VREAD)
def read_variants_path(h: H):
    for extra in (qs(_elements="id"), qs(_summary="true"), qs(_summary="text"), qs(_format="json"), qs(_pretty="true")):
        h.same_as_absent(lambda x, e=extra: h.get(f"/fhir/Observation/{x}?{e}"), h.id("ravi.lab"))
        h.same_as_absent(lambda x, e=extra: h.get(f"/fhir/Observation/{x}/_history/1?{e}"), h.id("ravi.lab"))
    for header in ({"If-None-Match": 'W/"1"'}, {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}):
        h.same_as_absent(lambda x, hd=header: h.get(f"/fhir/Observation/{x}", headers=hd), h.id("ravi.lab"))


@path("vread of ravi's versions", VREAD)
def vread_path(h: H):
    h.get(f"/fhir/{h.key('asha.lab')}/_history/1", status=200)
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/_history/1"), rid)
    h.same_as_absent(lambda x: h.get(f"/fhir/Observation/{x}/_history/2"), h.id("ravi.lab"))


@path("instance history", INSTANCE_HISTORY)
def instance_history_path(h: H):
    ex = h.get(f"/fhir/{h.key('asha.lab')}/_history", status=200)
    h.expect(history_keys(ex) == [h.key("asha.lab")], f"{ex}: {history_keys(ex)}")
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/_history"), rid)
    since = qs(_since="2000-01-01T00:00:00Z", _count="1")
    h.same_as_absent(lambda x: h.get(f"/fhir/Observation/{x}/_history?{since}"), h.id("ravi.lab"))


@path("type history", TYPE_HISTORY)
def type_history_path(h: H):
    for rtype in TYPES:
        for url in (f"/fhir/{rtype}/_history", f"/fhir/{rtype}/_history?{qs(_since='2000-01-01T00:00:00Z')}"):
            ex = h.get(url, status=200)
            h.expect(set(history_keys(ex)) == h.visible(rtype), f"{ex}: {sorted(history_keys(ex))}")


@path("system history (GET /fhir/_history)", SYSTEM_HISTORY)
def system_history_path(h: H):
    for url in ("/fhir/_history", f"/fhir/_history?{qs(_since='2000-01-01T00:00:00Z')}"):
        ex = h.get(url, status=200)
        h.expect(set(history_keys(ex)) == h.listed(), f"{ex}: {sorted(history_keys(ex))}")


@path("history paging: following next links", SYSTEM_HISTORY, TYPE_HISTORY)
def history_paging_path(h: H):
    for url, expected in (("/fhir/_history?_count=2", h.listed()),
                          ("/fhir/Observation/_history?_count=1", h.visible("Observation"))):
        pages = h.follow(url)
        seen = [k for p in pages for k in history_keys(p)]
        h.expect(set(seen) == expected and len(seen) == len(expected), f"{url}: pages show {sorted(seen)}")
        for p in pages:
            h.expect((p.json or {}).get("total") == len(expected), f"{p}: total {(p.json or {}).get('total')}")


@path("type search", TYPE_SEARCH)
def type_search_path(h: H):
    for rtype in TYPES:
        expect_search(h, f"/fhir/{rtype}", h.visible(rtype))


@path("search with _id = ravi's ids", TYPE_SEARCH)
def id_search_path(h: H):
    expect_search(h, "/fhir/Observation?" + qs(_id=",".join(k.split("/")[1] for k in h.ravi("Observation"))), set())
    for key in h.ravi():
        rtype, rid = key.split("/")
        expect_search(h, f"/fhir/{rtype}?{qs(_id=rid)}", set())
    expect_search(h, "/fhir/Patient?_id=asha,ravi", {"Patient/asha"})


@path("identifier search for ravi", TYPE_SEARCH)
def identifier_search_path(h: H):
    for url in (f"/fhir/Patient?{qs(identifier=f'{MRN}|MRN-RAVI-002')}", f"/fhir/Patient?{qs(identifier='MRN-RAVI-002')}",
                f"/fhir/Observation?{qs(identifier=f'{LAB_IDS}|LAB-RAVI-1')}", f"/fhir/Patient?{qs(family='Kumar')}",
                f"/fhir/Patient?{qs(name='Ravi')}", f"/fhir/RelatedPerson?{qs(name='Kumar')}"):
        expect_search(h, url, set())
    expect_search(h, f"/fhir/Patient?{qs(identifier=f'{MRN}|MRN-ASHA-001')}", {"Patient/asha"})


@path("search by references into ravi's records (and non-compartment references to asha)", TYPE_SEARCH)
def reference_search_path(h: H):
    for url in ("/fhir/Observation?subject=Patient/ravi", "/fhir/Observation?patient=ravi",
                "/fhir/Observation?subject=ravi", "/fhir/Encounter?patient=ravi", "/fhir/Condition?patient=Patient/ravi",
                "/fhir/MedicationRequest?subject=Patient/ravi", "/fhir/RelatedPerson?patient=ravi",
                "/fhir/Provenance?patient=ravi", f"/fhir/DiagnosticReport?result={h.key('ravi.lab')}",
                f"/fhir/Provenance?target={h.key('ravi.lab')}", f"/fhir/Observation?encounter={h.key('ravi.encounter')}",
                # ravi's 'linked' Observation refers to asha through focus and derivedFrom, which do not put it
                # into her compartment: it stays his
                "/fhir/Observation?focus=Patient/asha", f"/fhir/Observation?derived-from={h.key('asha.vital')}",
                "/fhir/Observation?focus:missing=false", "/fhir/Observation?code=10157-6",
                "/fhir/Patient/asha/Observation?subject=Patient/ravi"):
        expect_search(h, url, set())
    for url in ("/fhir/Observation?subject=Patient/asha", "/fhir/Observation?subject:missing=false",
                "/fhir/Observation?focus:missing=true", "/fhir/Observation?_lastUpdated=gt2000-01-01",
                "/fhir/Observation?status=final", "/fhir/Observation?code:not=10157-6"):
        expect_search(h, url, h.visible("Observation"))


@path("chained search", TYPE_SEARCH)
def chain_path(h: H):
    for url in ("/fhir/Observation?subject:Patient.name=Kumar", "/fhir/Observation?patient.name=Kumar",
                f"/fhir/Observation?{qs(**{'subject:Patient.identifier': 'MRN-RAVI-002'})}",
                # asha's 'derived' Observation refers to ravi's lab result: a chain through it would tell
                # his result's code, subject and value
                f"/fhir/Observation?{qs(**{'derived-from:Observation.code': f'{LOINC}|2345-7'})}",
                "/fhir/Observation?derived-from:Observation.subject=Patient/ravi",
                "/fhir/Observation?derived-from:Observation.value-quantity=gt100",
                "/fhir/DiagnosticReport?result.code=2345-7",
                "/fhir/DiagnosticReport?result:Observation.subject:Patient.name=Kumar",
                "/fhir/Encounter?patient.identifier=MRN-RAVI-002"):
        expect_search(h, url, set())
    expect_search(h, "/fhir/Observation?subject:Patient.name=Sharma", h.visible("Observation"))
    expect_search(h, "/fhir/DiagnosticReport?result.code=718-7", {h.key("asha.report")})


@path("reverse chain _has", TYPE_SEARCH)
def has_path(h: H):
    for url in ("/fhir/Patient?_has:Observation:subject:code=2345-7",
                # ravi's 'linked' Observation has focus Patient/asha: _has through it would be an oracle
                "/fhir/Patient?_has:Observation:focus:code=10157-6",
                f"/fhir/Patient?{qs(**{'_has:Observation:focus:_id': h.id('ravi.linked')})}",
                "/fhir/Observation?_has:Observation:derived-from:subject=Patient/ravi",
                "/fhir/Observation?_has:Observation:derived-from:code=10157-6",
                "/fhir/Patient?_has:RelatedPerson:patient:name=Kumar",
                "/fhir/Observation?_has:DiagnosticReport:result:subject=Patient/ravi"):
        expect_search(h, url, set())
    expect_search(h, "/fhir/Patient?_has:Observation:subject:code=718-7", {"Patient/asha"})


@path("_include", TYPE_SEARCH)
def include_path(h: H):
    obs = h.visible("Observation")
    # asha's 'derived' Observation refers to ravi's lab result
    expect_search(h, "/fhir/Observation?_include=Observation:derived-from", obs, set())
    expect_search(h, "/fhir/Observation?_include=Observation:derived-from:Observation", obs, set())
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('asha.derived'), _include='Observation:derived-from')}",
                  {h.key("asha.derived")}, set())
    expect_search(h, "/fhir/DiagnosticReport?_include=DiagnosticReport:result", {h.key("asha.report")}, {h.key("asha.lab")})
    expect_search(h, "/fhir/Observation?_include=Observation:subject", obs, {"Patient/asha"})
    expect_search(h, "/fhir/Provenance?_include=Provenance:target", {h.key("asha.provenance")},
                  {h.key("asha.lab"), "Patient/asha"})
    expect_search(h, "/fhir/Encounter?_include=Encounter:service-provider&_include=Encounter:participant",
                  {h.key("asha.encounter")}, set())


@path("_revinclude", TYPE_SEARCH)
def revinclude_path(h: H):
    obs = h.visible("Observation")
    # ravi's 'linked' Observation refers to asha (focus) and to her vital signs (derivedFrom)
    expect_search(h, "/fhir/Patient?_revinclude=Observation:focus", {"Patient/asha"}, set())
    expect_search(h, "/fhir/Observation?_revinclude=Observation:derived-from", obs, set())
    expect_search(h, "/fhir/Observation?_revinclude=Provenance:target", obs, {h.key("asha.provenance")})
    expect_search(h, "/fhir/Observation?_revinclude=DiagnosticReport:result", obs, {h.key("asha.report")})
    expect_search(h, "/fhir/Patient?_revinclude=RelatedPerson:patient", {"Patient/asha"}, {h.key("asha.related")})
    expect_search(h, "/fhir/Practitioner?_revinclude=Observation:performer", set(), set())
    expect_search(h, "/fhir/Organization?_revinclude=Patient:organization", set(), set())


@path("_include:iterate", TYPE_SEARCH)
def include_iterate_path(h: H):
    obs = h.visible("Observation")
    expect_search(h, "/fhir/Patient?_id=asha&_revinclude=Observation:subject&_include:iterate=Observation:derived-from",
                  {"Patient/asha"}, obs)
    expect_search(h, "/fhir/DiagnosticReport?_include=DiagnosticReport:result&_include:iterate=Observation:encounter"
                     "&_include:iterate=Observation:derived-from",
                  {h.key("asha.report")}, {h.key("asha.lab"), h.key("asha.encounter")})
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('asha.derived'))}&_include:iterate=Observation:derived-from",
                  {h.key("asha.derived")}, set())


@path("_revinclude:iterate", TYPE_SEARCH)
def revinclude_iterate_path(h: H):
    obs = h.visible("Observation")
    expect_search(h, "/fhir/Patient?_id=asha&_revinclude=Observation:subject"
                     "&_revinclude:iterate=Observation:derived-from", {"Patient/asha"}, obs)
    expect_search(h, "/fhir/Patient?_id=asha&_revinclude=Observation:subject&_revinclude:iterate=Provenance:target"
                     "&_revinclude:iterate=DiagnosticReport:result",
                  {"Patient/asha"}, obs | {h.key("asha.provenance"), h.key("asha.report")})
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('asha.vital'))}&_revinclude:iterate=Observation:derived-from",
                  {h.key("asha.vital")}, set())
    expect_search(h, "/fhir/Encounter?_revinclude=Observation:encounter&_revinclude:iterate=Observation:derived-from",
                  {h.key("asha.encounter")}, {h.key("asha.lab"), h.key("asha.vital")})


@path("_include=* and _revinclude=*", TYPE_SEARCH)
def include_star_path(h: H):
    obs = h.visible("Observation")
    expect_search(h, "/fhir/Observation?_include=*", obs, {"Patient/asha", h.key("asha.encounter")})
    expect_search(h, "/fhir/Observation?_revinclude=*", obs, {h.key("asha.report"), h.key("asha.provenance")})
    expect_search(h, "/fhir/Patient?_revinclude=*", {"Patient/asha"}, h.visible() - {"Patient/asha"})
    expect_search(h, "/fhir/Patient?_include=*&_revinclude:iterate=*&_include:iterate=*", {"Patient/asha"},
                  h.visible() - {"Patient/asha"})


@path("compartment search (GET /fhir/Patient/<id>/<type>)", COMPARTMENT)
def compartment_path(h: H):
    for rtype in COMPARTMENT_TYPES:
        ex = expect_search(h, f"/fhir/Patient/ravi/{rtype}", set())
        h.expect((ex.json or {}).get("total") == 0, f"{ex}: total {(ex.json or {}).get('total')}")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/Patient/{x}/{t}"), "ravi")
        expect_search(h, f"/fhir/Patient/asha/{rtype}", h.visible(rtype) - {"Patient/asha"})
    expect_search(h, "/fhir/Patient/ravi/Observation?_include=Observation:subject", set(), set())
    expect_search(h, "/fhir/Patient/asha/Observation?_revinclude=Observation:derived-from"
                     "&_include=Observation:derived-from", h.visible("Observation"), set())
    expect_search(h, "/fhir/Patient/asha/Observation?focus=Patient/asha", set())
    expect_total(h, "/fhir/Patient/ravi/Observation?_summary=count", 0)
    h.same_as_absent(lambda x: h.get(f"/fhir/Encounter/{x}/Observation"), h.id("ravi.encounter"))


@path("system search (GET /fhir?_type=...)", SYSTEM_SEARCH)
def system_search_path(h: H):
    ex = expect_search(h, "/fhir?_type=Observation,Patient", h.visible("Observation") | {"Patient/asha"})
    h.expect((ex.json or {}).get("total") == 4, f"{ex}: total {(ex.json or {}).get('total')}")
    expect_search(h, "/fhir?_type=Observation", h.visible("Observation"))
    expect_search(h, "/fhir?" + qs(_type="Observation,Patient", _id=f"{h.id('ravi.lab')},ravi"), set())
    expect_search(h, "/fhir?_type=Observation,Patient&_revinclude=Observation:focus&_revinclude=Observation:derived-from",
                  h.visible("Observation") | {"Patient/asha"}, set())
    expect_search(h, "/fhir?_type=" + ",".join(TYPES[2:]), set().union(*(h.visible(t) for t in TYPES[2:])))


@path("system search by POST (/fhir/_search)", SYSTEM_SEARCH_POST)
def system_search_post_path(h: H):
    expect_search(h, "/fhir/_search", h.visible("Observation") | {"Patient/asha"}, form=[("_type", "Observation,Patient")])
    expect_search(h, "/fhir/_search", set(), form=[("_type", "Observation"), ("subject", "Patient/ravi")])


@path("search by POST (/fhir/<type>/_search)", TYPE_SEARCH_POST)
def search_post_path(h: H):
    obs = h.visible("Observation")
    expect_search(h, "/fhir/Observation/_search", obs, form=[])
    expect_search(h, "/fhir/Observation/_search", set(), form=[("subject", "Patient/ravi")])
    expect_search(h, "/fhir/Observation/_search", set(),
                  form=[("_id", ",".join(k.split("/")[1] for k in h.ravi("Observation")))])
    expect_search(h, "/fhir/Observation/_search", obs, set(), form=[("_revinclude", "Observation:derived-from"),
                                                                   ("_include", "Observation:derived-from")])
    expect_search(h, "/fhir/Patient/_search", set(), form=[("_has:Observation:focus:code", "10157-6")])


@path("_summary=count totals", TYPE_SEARCH, SYSTEM_SEARCH, COMPARTMENT)
def summary_count_path(h: H):
    for rtype in TYPES:
        expect_total(h, f"/fhir/{rtype}?_summary=count", len(h.visible(rtype)))
    expect_total(h, f"/fhir/Observation?{qs(code=f'{LOINC}|8867-4', _summary='count')}", 1)
    expect_total(h, "/fhir/Observation?subject=Patient/ravi&_summary=count", 0)
    expect_total(h, "/fhir/Observation?focus=Patient/asha&_summary=count", 0)
    expect_total(h, "/fhir/Patient?_has:Observation:focus:code=10157-6&_summary=count", 0)
    expect_total(h, "/fhir/Observation?subject:Patient.name=Kumar&_summary=count", 0)
    expect_total(h, "/fhir?_type=Observation,Patient&_summary=count", 4)
    expect_total(h, "/fhir/Patient/ravi/Observation?_summary=count", 0)
    expect_total(h, "/fhir/Patient/asha/Observation?_summary=count", 3)


@path("_total=accurate, _total=estimate and _count=0", TYPE_SEARCH, SYSTEM_SEARCH)
def total_path(h: H):
    for total in ("accurate", "estimate"):
        for url, n in ((f"/fhir/Observation?_total={total}&_count=1", 3),
                       (f"/fhir/Observation?{qs(code=f'{LOINC}|8867-4', _total=total, _count=1)}", 1),
                       (f"/fhir/Patient?_total={total}&_count=1", 1),
                       (f"/fhir/Observation?_total={total}&_count=0", 3),
                       (f"/fhir?_type=Observation,Patient&_total={total}&_count=1", 4),
                       (f"/fhir/Patient/ravi/Observation?_total={total}&_count=1", 0)):
            ex = h.get(url, status=200)
            h.expect((ex.json or {}).get("total") == n, f"{ex}: total {(ex.json or {}).get('total')}, expected {n}")


@path("paging: following next links", TYPE_SEARCH, SYSTEM_SEARCH, COMPARTMENT)
def paging_path(h: H):
    obs = h.visible("Observation")
    for url, expected in (("/fhir/Observation?_count=1", obs),
                          ("/fhir/Observation?_count=1&_sort=-_lastUpdated", obs),
                          ("/fhir/Observation?_count=2&_sort=code", obs),
                          ("/fhir?_type=Observation,Patient&_count=1", obs | {"Patient/asha"}),
                          ("/fhir/Patient/asha/Observation?_count=1", obs),
                          ("/fhir/Observation?_count=1&_revinclude=Observation:derived-from", obs)):
        pages = h.follow(url)
        seen = [k for p in pages for k in matches(p)]
        h.expect(sorted(seen) == sorted(expected), f"{url}: pages show {sorted(seen)}, expected {sorted(expected)}")
        for p in pages:
            h.expect(not matches(p, "include"), f"{p}: includes {matches(p, 'include')}")


@path("_elements and _summary in searches", TYPE_SEARCH)
def elements_summary_path(h: H):
    ravi_obs = ",".join(k.split("/")[1] for k in h.ravi("Observation"))
    for variant in ({"_elements": "subject,note"}, {"_elements": "id"}, {"_summary": "true"}, {"_summary": "data"},
                    {"_summary": "text"}, {"_summary": "false"}):
        expect_search(h, f"/fhir/Observation?{qs(**variant)}", h.visible("Observation"))
        expect_search(h, f"/fhir/Observation?{qs(_id=ravi_obs, **variant)}", set())
        expect_search(h, f"/fhir/Observation?{qs(code=f'{LOINC}|8867-4', _revinclude='Observation:derived-from', **variant)}",
                      {h.key("asha.vital")}, set())


def bundle(kind: str, entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def get_entry(url: str) -> dict:
    return {"request": {"method": "GET", "url": url}}


# what GET entries of a Bundle can do here: read, vread, search, operations (not history: entry urls with
# _history other than a vread are refused as invalid, for ravi's ids and absent ones alike)
def read_entries(obs: str, patient: str) -> list[dict]:
    return [get_entry(u) for u in (f"Observation/{obs}", f"Observation/{obs}/_history/1", f"Patient/{patient}",
                                   f"Patient/{patient}/_history/1", f"Observation/{obs}/$validate")]


def search_entries(obs: str, patient: str) -> list[dict]:
    return [get_entry(u) for u in (f"Observation?subject=Patient/{patient}", f"Observation?_id={obs}",
                                   f"Patient?_id={patient}", f"DiagnosticReport?result=Observation/{obs}",
                                   f"Observation?derived-from=Observation/{obs}",
                                   "Observation?_revinclude=Observation:derived-from&_include=Observation:derived-from",
                                   "Observation?_include=*&_revinclude=*", "Observation?_summary=count",
                                   "Patient?_has:Observation:focus:code=10157-6", "Observation?derived-from:Observation.code=2345-7",
                                   "Patient?_revinclude=*&_include:iterate=*")]


@path("batch with GET entries", BATCH)
def batch_get_path(h: H):
    lab = h.id("ravi.vital")      # not ravi.lab: its id is in asha's own 'derived' Observation
    h.same_as_absent(lambda x, p: h.call("POST", "/fhir", body=bundle("batch", read_entries(x, p) + search_entries(x, p)),
                                         status=200), lab, "ravi")
    ex = h.call("POST", "/fhir", body=bundle("batch", [get_entry(f"Observation/{h.id('asha.lab')}")]), status=200)
    h.expect(bool(list(resources(ex.json))[1:]), f"{ex}: asha's own lab result is not in the batch response")


@path("transaction with GET entries", BATCH)
def transaction_get_path(h: H):
    lab = h.id("ravi.vital")
    h.same_as_absent(lambda x, p: h.call("POST", "/fhir", body=bundle("transaction", search_entries(x, p)), status=200),
                     lab, "ravi")
    for i in range(len(read_entries(lab, "ravi"))):
        h.same_as_absent(lambda x, p, i=i: h.call("POST", "/fhir", body=bundle("transaction", [read_entries(x, p)[i]])),
                         lab, "ravi")


def patch_binary(ops: list) -> dict:
    return {"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(ops).encode()).decode()}


LANGUAGE_PATCH = [{"op": "add", "path": "/language", "value": "en"}]


@path("batch and transaction: PUT, PATCH and DELETE entries on ravi's ids", BATCH)
def bundle_writes_path(h: H):
    def entries(x, p):
        return [{"resource": observation_for("asha", id=x), "request": {"method": "PUT", "url": f"Observation/{x}"}},
                {"resource": patch_binary(LANGUAGE_PATCH), "request": {"method": "PATCH", "url": f"Observation/{x}"}},
                {"request": {"method": "DELETE", "url": f"Observation/{x}"}},
                {"request": {"method": "DELETE", "url": f"Patient/{p}"}},
                {"request": {"method": "DELETE", "url": f"Observation/{x}", "ifMatch": 'W/"1"'}}]
    lab = h.id("ravi.lab")
    h.same_as_absent(lambda x, p: h.call("POST", "/fhir", body=bundle("batch", entries(x, p)), status=200), lab, "ravi")
    for i in range(5):
        h.same_as_absent(lambda x, p, i=i: h.call("POST", "/fhir", body=bundle("transaction", [entries(x, p)[i]])),
                         lab, "ravi")


@path("transaction and batch: conditional references to ravi", BATCH)
def conditional_reference_path(h: H):
    def tx(kind, criteria):
        entry = {"fullUrl": "urn:uuid:5d1c6f0e-3b0a-4c43-9d0e-5b2f3f1d2a10",
                 "resource": observation_for("asha", subject=ref(f"Patient?{criteria}")),
                 "request": {"method": "POST", "url": "Observation"}}
        return h.call("POST", "/fhir", body=bundle(kind, [entry]))
    for kind in ("transaction", "batch"):
        h.same_as_absent(lambda x, k=kind: tx(k, qs(identifier=f"{MRN}|{x}")), "MRN-RAVI-002")
        h.same_as_absent(lambda x, k=kind: tx(k, qs(_id=x)), "ravi")
        h.same_as_absent(lambda x, k=kind: tx(k, qs(family=x)), "Kumar")
    # a criterion both patients meet resolves to asha alone (not "more than one")
    ex = tx("transaction", qs(birthdate=BIRTH_DATE))
    h.expect(ex.status == (200 if h.writes else 403), f"{ex}: {ex.body[:300]!r}")
    if h.writes and ex.status == 200:
        location = ex.json["entry"][0]["response"]["location"]
        stored = h.system_call("GET", "/fhir/" + location.split("/_history")[0]).get_json()
        h.expect(stored["subject"] == ref("Patient/asha"), f"{ex}: stored subject {stored['subject']}")


@path("conditional create (If-None-Exist) matching ravi's records", CREATE, BATCH)
def conditional_create_path(h: H):
    created = 201 if h.writes else 403
    for criteria in (qs(identifier=f"{LAB_IDS}|LAB-RAVI-1"), qs(_id=h.id("ravi.lab")), "subject=Patient/ravi",
                     "subject:Patient.name=Kumar", "focus=Patient/asha"):
        ex = h.call("POST", "/fhir/Observation", body=observation_for("asha"), headers={"If-None-Exist": criteria},
                    status=created)
        if ex.status == 201:
            h.expect(ex.json["subject"] == ref("Patient/asha"), f"{ex}: {ex.json}")
        entry = {"resource": observation_for("asha"), "request": {"method": "POST", "url": "Observation",
                                                                  "ifNoneExist": criteria}}
        ex = h.call("POST", "/fhir", body=bundle("transaction", [entry]), status=200 if h.writes else 403)
        if ex.status == 200:
            h.expect(ex.json["entry"][0]["response"]["status"].startswith("201"), f"{ex}: {ex.json}")
    # a criterion that matches asha's and ravi's vital signs finds asha's alone (not "more than one")
    ex = h.call("POST", "/fhir/Observation", body=observation_for("asha"),
                headers={"If-None-Exist": qs(code=f"{LOINC}|8867-4")}, status=200 if h.writes else 403)
    if ex.status == 200:
        h.expect(ex.json["id"] == h.id("asha.vital"), f"{ex}: returned {ex.json.get('id')}")


@path("conditional update matching ravi's records", CONDITIONAL_UPDATE)
def conditional_update_path(h: H):
    for criteria in (qs(identifier=f"{LAB_IDS}|LAB-RAVI-1"), qs(_id=h.id("ravi.lab")), "subject=Patient/ravi",
                     "patient.name=Kumar"):
        ex = h.call("PUT", f"/fhir/Observation?{criteria}", body=observation_for("asha"),
                    status=201 if h.writes else 403)
        if ex.status == 201:
            h.expect(ex.json["id"] not in {k.split("/")[1] for k in h.ravi()}, f"{ex}: wrote {ex.json['id']}")
        stored = h.system_call("GET", f"/fhir/{h.key('ravi.lab')}").get_json()
        h.expect(stored["meta"]["versionId"] == "1" and stored["subject"] == ref("Patient/ravi"),
                 f"{ex}: ravi's lab result is now {stored}")
    h.same_as_absent(lambda x: h.call("PUT", f"/fhir/Observation?{qs(_id=x)}", body=observation_for("asha", id=x)),
                     h.id("ravi.lab"))
    # matching asha's and ravi's vital signs: updates asha's (not "more than one")
    ex = h.call("PUT", f"/fhir/Observation?{qs(code=f'{LOINC}|8867-4')}", body=observation_for("asha"),
                status=200 if h.writes else 403)
    if ex.status == 200:
        h.expect(ex.json["id"] == h.id("asha.vital"), f"{ex}: updated {ex.json.get('id')}")


@path("conditional delete matching ravi's records", CONDITIONAL_DELETE)
def conditional_delete_path(h: H):
    for url in (f"/fhir/Observation?{qs(identifier=f'{LAB_IDS}|LAB-RAVI-1')}", f"/fhir/Observation?{qs(_id=h.id('ravi.lab'))}",
                "/fhir/Observation?subject=Patient/ravi", f"/fhir/Patient?{qs(identifier=f'{MRN}|MRN-RAVI-002')}",
                "/fhir/Patient?_id=ravi", "/fhir/Observation?focus=Patient/asha"):
        h.call("DELETE", url, status=204 if h.writes else 403)
        for role in ("ravi.lab", "ravi.patient", "ravi.linked"):
            r = h.system_call("GET", f"/fhir/{h.key(role)}")
            h.expect(r.status_code == 200, f"DELETE {url}: ravi's {role} now answers {r.status_code}")
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/Observation?{qs(_id=x)}"), h.id("ravi.lab"))
    # matching asha's and ravi's vital signs: deletes asha's (not "more than one")
    h.call("DELETE", f"/fhir/Observation?{qs(code=f'{LOINC}|8867-4')}", status=204 if h.writes else 403)
    if h.writes:
        r = h.system_call("GET", f"/fhir/{h.key('asha.vital')}")
        h.expect(r.status_code == 410, f"conditional delete of vital signs: asha's answers {r.status_code}")


@path("conditional patch matching ravi's records", CONDITIONAL_PATCH)
def conditional_patch_path(h: H):
    for criteria in (qs(identifier=f"{LAB_IDS}|LAB-RAVI-1"), qs(_id=h.id("ravi.lab")), "subject=Patient/ravi",
                     "patient.name=Kumar", "focus=Patient/asha"):
        h.call("PATCH", f"/fhir/Observation?{criteria}", patch=LANGUAGE_PATCH, status=404 if h.writes else 403)
        stored = h.system_call("GET", f"/fhir/{h.key('ravi.lab')}").get_json()
        h.expect(stored["meta"]["versionId"] == "1", f"PATCH Observation?{criteria}: ravi's lab result is now {stored}")
    h.same_as_absent(lambda x: h.call("PATCH", f"/fhir/Observation?{qs(_id=x)}", patch=LANGUAGE_PATCH),
                     h.id("ravi.lab"))
    # matching asha's and ravi's vital signs: patches asha's (not "more than one")
    ex = h.call("PATCH", f"/fhir/Observation?{qs(code=f'{LOINC}|8867-4')}", patch=LANGUAGE_PATCH,
                status=200 if h.writes else 403)
    if ex.status == 200:
        h.expect(ex.json["id"] == h.id("asha.vital"), f"{ex}: patched {ex.json.get('id')}")


def stored_copy(h: H, key: str, new_id: str) -> dict:
    body = h.system_call("GET", f"/fhir/{key}").get_json()
    body.pop("meta", None)
    body.pop("data", None)
    return {**body, "id": new_id}


@path("update (PUT) on ravi's ids", UPDATE)
def update_path(h: H):
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, k=key: h.call("PUT", f"/fhir/{k.split('/')[0]}/{x}", body=stored_copy(h, k, x)), rid)
    for key in h.ravi("Observation"):
        h.same_as_absent(lambda x: h.call("PUT", f"/fhir/Observation/{x}", body=observation_for("asha", id=x)),
                         key.split("/")[1])
        h.same_as_absent(lambda x: h.call("PUT", f"/fhir/Observation/{x}", body=observation_for("asha", id=x),
                                          headers={"If-Match": 'W/"1"'}), key.split("/")[1])


@path("patch on ravi's ids", PATCH)
def patch_path(h: H):
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.call("PATCH", f"/fhir/{t}/{x}", patch=LANGUAGE_PATCH), rid)
    h.same_as_absent(lambda x: h.call("PATCH", f"/fhir/Observation/{x}", patch=LANGUAGE_PATCH,
                                      headers={"If-Match": 'W/"1"'}), h.id("ravi.lab"))


@path("delete on ravi's ids", DELETE)
def delete_path(h: H):
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.call("DELETE", f"/fhir/{t}/{x}"), rid)
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/Observation/{x}", headers={"If-Match": 'W/"1"'}),
                     h.id("ravi.vital"))


@path("$validate on ravi's instances", INSTANCE_OP_GET, INSTANCE_OP_POST)
def validate_instance_path(h: H):
    h.get(f"/fhir/{h.key('asha.lab')}/$validate", status=200)
    for key in h.ravi():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/$validate"), rid)
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Observation/{x}/$validate", body={"resourceType": "Parameters"}),
                     h.id("ravi.lab"))
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$validate", body={"resourceType": "Parameters"}), "ravi")


@path("health cards and $match for ravi", INSTANCE_OP_GET, INSTANCE_OP_POST, TYPE_OP_POST)
def health_card_and_match_path(h: H):
    h.get("/fhir/Patient/asha/$health-card", status=200)
    for fmt in ("json", "png", "file"):
        h.same_as_absent(lambda x, f=fmt: h.get(f"/fhir/Patient/{x}/$health-card?format={f}"), "ravi")
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$health-card", body={"resourceType": "Parameters"}),
                     "ravi")
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$registration-code"), "ravi")
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$revoke-health-cards"), "ravi")
    uhids = sorted(u for u in h.s.fingerprints["ravi"] if re.fullmatch(r"\d\d-\d{4}-\d{4}-\d{4}", u))
    assert uhids
    probe = {"resourceType": "Patient", "name": [{"family": "Kumar", "given": ["Ravi"]}],
             "identifier": [{"system": MRN, "value": "MRN-RAVI-002"}] + [
                 {"system": "http://fhir.test/fhir/sid/uhid", "value": u} for u in uhids]}
    ex = h.call("POST", "/fhir/Patient/$match", body={"resourceType": "Parameters",
                                                     "parameter": [{"name": "resource", "resource": probe}]}, status=200)
    h.expect((ex.json or {}).get("total") == 0, f"{ex}: $match found candidates outside the token's reach")


@path("$immunization-status for ravi: read and persist like an absent patient", INSTANCE_OP_GET, INSTANCE_OP_POST)
def immunization_status_path(h: H):
    h.same_as_absent(lambda x: h.get(f"/fhir/Patient/{x}/$immunization-status?date=2031-01-01"), "ravi")
    persist = {"resourceType": "Parameters", "parameter": [{"name": "persist", "valueBoolean": True}]}
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$immunization-status", body=persist), "ravi")


@path("$everything: asha's whole record, ravi's like an absent patient, the type level", INSTANCE_OP_GET,
      INSTANCE_OP_POST, TYPE_OP_GET)
def everything_path(h: H):
    own = [k for page in h.follow("/fhir/Patient/asha/$everything?_count=3") for k in matches(page) + matches(page, "include")]
    h.expect(len(own) == len(set(own)), f"$everything repeated resources across its pages: {own}")
    compartment = {k for k in h.visible() if k.split("/")[0] in COMPARTMENT_TYPES}     # (not her Binary)
    h.expect(compartment <= set(own), f"$everything missed asha's {sorted(compartment - set(own))}")
    typed = [k for page in h.follow("/fhir/Patient/$everything?_count=4") for k in matches(page) + matches(page, "include")]
    h.expect(sorted(typed) == sorted(own), f"the type level {sorted(typed)} is not asha's record {sorted(own)}")
    first = h.get("/fhir/Patient/asha/$everything?_count=1", status=200)
    cursor = urlsplit(next(link["url"] for link in (first.json or {}).get("link", ()) if link["relation"] == "next")).query
    for query in ("", "?_type=Observation,Patient&_count=1", "?start=2000&_since=2000-01-01T00:00:00Z", f"?{cursor}"):
        h.same_as_absent(lambda x, qy=query: h.get(f"/fhir/Patient/{x}/$everything{qy}"), "ravi")
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$everything", body={"resourceType": "Parameters"}),
                     "ravi")


@path("type and system level operations", TYPE_OP_GET, TYPE_OP_POST, SYSTEM_OP_GET, SYSTEM_OP_POST)
def operations_path(h: H):
    h.call("POST", "/fhir/Observation/$validate", body=observation_for("asha"), status=200)
    h.get(f"/fhir/CodeSystem/$lookup?{qs(system=LOINC, code='2345-7')}", status=404)
    h.get(f"/fhir/$lookup?{qs(system=LOINC, code='2345-7')}", status=404)
    h.call("POST", "/fhir/$validate", body={"resourceType": "Parameters"}, status=404)
    # counters per custodian and type, for regulators and administrators (docs/data-quality.md)
    h.get("/fhir/$data-quality", status=403)
    h.call("POST", "/fhir/$data-quality", body={"resourceType": "Parameters"}, status=403)


AUDIT_LOG = ("GET /fhir/$audit-checkpoint", "GET /fhir/$audit-proof", "GET /fhir/$audit-consistency",
             "GET /fhir/$audit-entries")


@path("the audit log's checkpoint, proofs and entries: regulators and administrators only", *AUDIT_LOG)
def audit_log_path(h):
    for url in ("/fhir/$audit-checkpoint", "/fhir/$audit-proof?index=0&size=1", "/fhir/$audit-consistency?from=1&to=2",
                "/fhir/$audit-entries?start=0&end=10"):
        h.get(url, status=403)


@path("ravi's deleted resources", READ, VREAD, INSTANCE_HISTORY)
def deleted_path(h: H):
    for role in ("ravi.lab", "ravi.condition"):
        assert h.system_call("DELETE", f"/fhir/{h.key(role)}").status_code == 204
    h.resnapshot()
    for role in ("ravi.lab", "ravi.condition"):
        rtype, rid = h.key(role).split("/")
        for suffix in ("", "/_history", "/_history/1", "/_history/2", "/$validate"):
            h.same_as_absent(lambda x, t=rtype, s=suffix: h.get(f"/fhir/{t}/{x}{s}"), rid)
        h.same_as_absent(lambda x, t=rtype: h.call("PATCH", f"/fhir/{t}/{x}", patch=LANGUAGE_PATCH), rid)
        h.same_as_absent(lambda x, t=rtype: h.call("DELETE", f"/fhir/{t}/{x}"), rid)


@path("versions of a resource that moved from ravi's compartment to asha's", VREAD, INSTANCE_HISTORY, TYPE_HISTORY,
      SYSTEM_HISTORY)
def moved_path(h: H):
    """An Observation filed under ravi, then corrected to asha: its first version is ravi's record."""
    first = observation_for("ravi", note=[{"text": f"{RAVI_MARK} filed under ravi"}],
                            identifier=[{"system": LAB_IDS, "value": "LAB-RAVI-1"}])
    r = h.system_call("POST", "/fhir/Observation", first)
    assert r.status_code == 201
    moved = r.get_json()["id"]
    assert h.system_call("PUT", f"/fhir/Observation/{moved}", observation_for("asha", id=moved)).status_code == 200
    h.resnapshot()
    h.get(f"/fhir/Observation/{moved}", status=200)
    h.get(f"/fhir/Observation/{moved}/_history/1")
    h.get(f"/fhir/Observation/{moved}/_history")
    h.get("/fhir/Observation/_history")
    h.get("/fhir/_history")


BULK_KICKOFFS = tuple(f"{m} /fhir/{p}" for p in ("$export", "Patient/$export", "Group/<id>/$export")
                      for m in ("GET", "POST"))
BULK_STATUS = ("GET /fhir/bulk-status/<job_id>", "DELETE /fhir/bulk-status/<job_id>")
BULK_FILES = "GET /fhir/bulk-files/<job_id>/<name>"


@path("bulk export: kick-off refused, another client's export unknown", *BULK_KICKOFFS, *BULK_STATUS, BULK_FILES)
def bulk_export_path(h: H):
    from fhirserver.bulk.worker import Worker
    kick = {"Prefer": "respond-async"}
    started = h.client.get("/fhir/$export", headers={**h.system, "Prefer": "respond-async"})
    job = started.headers["Content-Location"].rsplit("/", 1)[1] if started.status_code == 202 else "none"
    Worker(h.app.config["MEDPORT"]).run_once()
    body = {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": ref("Patient/ravi")}]}
    for url in ("/fhir/$export", "/fhir/Patient/$export", "/fhir/Group/g1/$export"):
        h.call("GET", url, headers=kick, status=403)       # patient tokens never export (backend services only)
        h.call("POST", url, headers=kick, body=body if "Patient" in url else None, status=403)
    h.same_as_absent(lambda x: h.get(f"/fhir/bulk-status/{x}"), job)
    h.same_as_absent(lambda x: h.get(f"/fhir/bulk-files/{x}/0.ndjson"), job)
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/bulk-status/{x}"), job)
    h.expect(h.system_call("GET", f"/fhir/bulk-status/{job}").status_code == 200, "the other client's export survives")


@path("subscriptions: ravi's like an absent one; asha's own list and events hold nothing of ravi's", READ, VREAD,
      INSTANCE_HISTORY, UPDATE, DELETE, TYPE_SEARCH, INSTANCE_OP_GET, INSTANCE_OP_POST)
def subscriptions_path(h: H):
    from tests.subscriptions._probe import probe_others_subscription
    from tests.subscriptions._world import subscription
    ravi = {**auth(mint(h.app, "patient/*.cruds", patient="ravi")), "Content-Type": FHIR_JSON}
    r = h.client.post("/fhir/Subscription", json=subscription("https://hooks.example.org/r", "diagnostic-report-final"),
                      headers=ravi)
    assert r.status_code == 201, r.get_data(as_text=True)
    theirs = r.get_json()
    mine = None
    if h.writes:
        ex = h.call("POST", "/fhir/Subscription", status=201,
                    body=subscription("https://hooks.example.org/a", "diagnostic-report-final"))
        mine = (ex.json or {}).get("id")
    report = h.system_call("GET", f"/fhir/{h.key('ravi.report')}").get_json()
    report["status"] = "amended"                 # fires ravi's subscription, never asha's
    assert h.system_call("PUT", f"/fhir/{h.key('ravi.report')}", report).status_code == 200
    h.resnapshot()
    probe_others_subscription(h, theirs)
    listed = matches(h.search("/fhir/Subscription"))
    h.expect(listed == ([f"Subscription/{mine}"] if mine else []), f"asha's Subscription search listed {listed}")
    if mine:
        events = h.get(f"/fhir/Subscription/{mine}/$events?content=full-resource", status=200).json or {}
        h.expect(len(events.get("entry", ())) == 1, "asha's subscription has an event of ravi's report")


# ---- running the table ---------------------------------------------------------------------------

@pytest.fixture(scope="module", params=STORES)
def template(tmp_path_factory, request):
    return Template(tmp_path_factory.mktemp("seeded"), request.param, **LEAK_SETTINGS)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("leak_path", PATHS, ids=[p.name for p in PATHS])
def test_no_path_leaks_another_patients_records(template, tmp_path, leak_path: Path, scope: str):
    h = H(template.copy(tmp_path), template.seeded, scope)
    leak_path.run(h)
    check_responses(h)
    missing = sorted(set(leak_path.routes) - h.routes)
    assert not missing, f"the path claims routes it did not exercise: {missing}"
    assert not h.problems, f"{leak_path.name} with {scope}:\n- " + "\n- ".join(h.problems)


def fhir_routes(app) -> set[str]:
    return {f"{method} {rule.rule}" for rule in app.url_map.iter_rules() if rule.rule.startswith("/fhir")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_the_table_covers_every_route(template, tmp_path):
    routes = fhir_routes(template.copy(tmp_path))
    exercised = {r for p in PATHS for r in p.routes}
    assert not sorted(routes - exercised - set(OPEN)), "FHIR routes no path of the table exercises"
    assert not sorted((exercised | set(OPEN)) - routes), "the table names routes the app does not have"
    assert not exercised & set(OPEN)


def test_open_routes_answer_without_a_token_and_hold_no_records(template, tmp_path):
    app = template.copy(tmp_path)
    client = app.test_client()
    traces = set(template.seeded.fingerprints["ravi"]) | set(template.seeded.fingerprints["asha"])
    for route in OPEN:
        method, rule = route.split(" ")
        if "<" in rule:
            continue
        body = "shc:/5676" if method == "POST" else None       # $verify-health-card: a card that is not one
        r = client.open(rule, method=method, data=body)
        assert r.status_code == 200, route
        assert not [t for t in traces if t in r.get_data(as_text=True)], route
    # and a route outside OPEN does need one
    assert client.get("/fhir/Observation").status_code == 401
