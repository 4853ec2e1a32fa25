"""Leak tests between hospitals: hospital B's token cannot reach hospital A's patient through any path,
unless and as far as the patient consented (docs/governance.md, fhirserver/governance/policy.py).

The table below is tests/smart_auth/test_leaks.py's, for organisations. B is also the third party of a
referral: A orders a test for its patient at lab C (a ServiceRequest, a Task owned by C, C's report and
its PDF Binary; docs/orders.md), which B must reach through no route either. Each path runs with hospital B's
tokens (its backend client, system/*.cruds, and a practitioner of B, user/*.cruds) against the same
seeded records, in three phases of A's patient's Consent:

- none:      no Consent: B sees what B holds and the directory, nothing of A's;
- consented: the patient shares Observations with B: exactly A's Observations about that patient more;
- revoked:   the same Consent, then made inactive: nothing of A's again.

After each path, whatever it asserts itself, every response B got is checked: no 5xx; no resource of
A's that the phase hides, anywhere in a body (Bundles walked recursively); no trace of them (ids,
names, MRNs, UHIDs, the HOSPA-...-PRIVATE markers each record carries) in any body or header unless
the request named it; Bundle.total equals the matches of a single page; A's records unchanged.
Paths that touch A's hidden ids send the same request for an id that does not exist, and the two
answers must not differ. test_the_org_table_covers_every_route checks the table uses every route.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import unquote_plus, urlencode, urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON, STORES
from tests.smart_auth._tokens import BASE, LOINC, Template, auth, coding, mint, ref
from tests.smart_auth.test_leaks import (
    BATCH,
    BULK_FILES,
    BULK_KICKOFFS,
    BULK_STATUS,
    COMPARTMENT,
    CONDITIONAL_DELETE,
    CONDITIONAL_PATCH,
    CONDITIONAL_UPDATE,
    CREATE,
    DELETE,
    INSTANCE_HISTORY,
    INSTANCE_OP_GET,
    INSTANCE_OP_POST,
    LEAK_SETTINGS,
    OPEN,
    PATCH,
    READ,
    SYSTEM_HISTORY,
    SYSTEM_OP_GET,
    SYSTEM_OP_POST,
    SYSTEM_SEARCH,
    SYSTEM_SEARCH_POST,
    TYPE_HISTORY,
    TYPE_OP_GET,
    TYPE_OP_POST,
    TYPE_SEARCH,
    TYPE_SEARCH_POST,
    UPDATE,
    VREAD,
    Exchange,
    bundle,
    check_total,
    fhir_routes,
    get_entry,
    history_keys,
    matches,
    resources,
    signature,
)

A, B = "Organization/hosp-a", "Organization/hosp-b"
C = "Organization/hosp-c"             # the lab A refers its patient to; B is a third party to that referral
TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"
RESULT_PDF = "SE9TUEEtUkVTVUxUUERGLVBSSVZBVEU="     # base64 of HOSPA-RESULTPDF-PRIVATE
RT = "http://hl7.org/fhir/resource-types"
MRN_A = "http://hosp-a.test/mrn"
MRN_B = "http://hosp-b.test/mrn"
LAB_IDS = "http://hosp-a.test/lab"
A_LAB_CODE = "2345-7"
A_LINKED_CODE = "10157-6"
VITAL = "8867-4"
PASSWORD = "correct horse battery"
PHASES = ("none", "consented", "revoked")
TOKENS = ("system", "practitioner")
TYPES = ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "DiagnosticReport", "Provenance",
         "RelatedPerson", "Consent", "Binary", "Organization", "Practitioner", "Task", "ServiceRequest")
COMPARTMENT_TYPES = TYPES[:9]
KNOWN_TO_B = ("a.patient", "a.lab")      # B's referral names A's patient and A's lab result


def mark(role: str) -> str:
    """The marker a seeded record of A's carries: found in a response, it tells that record leaked."""
    return f"HOSPA-{role.split('.', 1)[1].upper()}-PRIVATE"


# ---- the seeded world -----------------------------------------------------------------------------

@dataclass
class Seeded:
    """What was stored: 'Type/id' keys by owner and by role."""
    owner: dict = field(default_factory=dict)         # "Type/id" -> "a" | "b" | "shared" | "server"
    named: dict = field(default_factory=dict)         # role -> "Type/id", e.g. "a.lab"
    fingerprints: dict = field(default_factory=dict)  # role -> strings only that record holds
    versions: dict = field(default_factory=dict)      # "Type/id" -> number of versions
    targets: dict = field(default_factory=dict)       # "Provenance/id" -> "Type/id" it is about

    def of(self, who: str, rtype: str | None = None) -> set[str]:
        return {k for k, o in self.owner.items() if o == who and (rtype is None or k.split("/")[0] == rtype)}

    def id(self, role: str) -> str:
        return self.named[role].split("/", 1)[1]


class Seeder:
    """Writes over HTTP with one token (so each record carries that token's custodian)."""

    def __init__(self, client, headers: dict, seeded: Seeded):
        self.client, self.headers, self.seeded = client, headers, seeded

    def put(self, role: str, owner: str, resource: dict) -> str:
        key = f"{resource['resourceType']}/{resource['id']}"
        r = self.client.put(f"/fhir/{key}", json=resource, headers={**self.headers, "Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.get_data(as_text=True)
        return self._remember(role, owner, key)

    def post(self, role: str, owner: str, resource: dict) -> str:
        r = self.client.post(f"/fhir/{resource['resourceType']}", json=resource,
                             headers={**self.headers, "Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.get_data(as_text=True)
        return self._remember(role, owner, f"{resource['resourceType']}/{r.get_json()['id']}")

    def _remember(self, role: str, owner: str, key: str) -> str:
        self.seeded.owner[key] = owner
        self.seeded.named[role] = key
        return key


def seed(app) -> Seeded:
    """Hospital A: patient Kumar (pa) with an Encounter, Observations (lab, updated once; vital signs;
    'linked', about B's patient too), a Condition, a MedicationRequest, a DiagnosticReport, a
    Provenance, a RelatedPerson and a Binary; a second patient (pa2) with nothing else; a Practitioner;
    a referral of pa to lab C (A's ServiceRequest and its open Task owned by C; C's DiagnosticReport based
    on the order and its PDF, a Binary whose securityContext is the report: roles a.order, a.task, a.result,
    a.resultpdf, A's side of the exchange for this table).
    Hospital B: patient Sharma (pb) with an Encounter, vital signs and a Condition, a Practitioner, and a
    referral Observation about A's patient derived from A's lab result. The exchange's own tool writes
    both Organizations. Accounts: pa's patient user and B's practitioner."""
    client = app.test_client()
    tokens = {who: mint(app, "system/*.cruds", client_id=f"hosp-{who}-ehr", organization=org)
              for who, org in (("a", A), ("b", B))}
    seeded = Seeded()
    s = Seeder(client, auth(mint(app, "system/*.cruds", client_id="exchange-tool")), seeded)
    sa, sb = Seeder(client, auth(tokens["a"]), seeded), Seeder(client, auth(tokens["b"]), seeded)
    for org in (A, B, C):
        s.put(org, "shared", {"resourceType": "Organization", "id": org.split("/")[1], "name": f"Hospital {org[-1]}"})
    sa.post("a.prac", "shared", {"resourceType": "Practitioner", "name": [{"family": "Iyer"}]})
    sb.post("b.prac", "shared", {"resourceType": "Practitioner", "name": [{"family": "Bose"}]})
    pa = sa.post("a.patient", "a", {"resourceType": "Patient", "identifier": [{"system": MRN_A, "value": "MRN-A-002"}],
                                    "name": [{"family": "Kumar", "given": [mark("a.patient")]}],
                                    "birthDate": "1950-04-02", "managingOrganization": ref(A)})
    pa2 = sa.post("a.other", "a", {"resourceType": "Patient", "identifier": [{"system": MRN_A, "value": "MRN-A-003"}],
                                   "name": [{"family": "Menon", "given": [mark("a.other")]}], "birthDate": "1950-04-02"})
    pb = sb.post("b.patient", "b", {"resourceType": "Patient", "identifier": [{"system": MRN_B, "value": "MRN-B-001"}],
                                    "name": [{"family": "Sharma", "given": ["Asha"]}], "birthDate": "1950-04-02"})
    b_enc = sb.post("b.encounter", "b", {"resourceType": "Encounter", "status": "finished", "class": _AMB,
                                         "subject": ref(pb), "serviceProvider": ref(B)})
    b_vital = sb.post("b.vital", "b", _obs(pb, VITAL, "Heart rate", encounter=ref(b_enc)))
    sb.post("b.condition", "b", {"resourceType": "Condition", "subject": ref(pb), "code": {"text": "Asthma"}})
    a_enc = sa.post("a.encounter", "a", {"resourceType": "Encounter", "status": "finished", "class": _AMB,
                                         "subject": ref(pa), "serviceProvider": ref(A),
                                         "reasonCode": [{"text": mark("a.encounter")}]})
    lab = sa.post("a.lab", "a", _obs(pa, A_LAB_CODE, "Glucose", encounter=ref(a_enc),
                                     identifier=[{"system": LAB_IDS, "value": "LAB-A-1"}],
                                     performer=[ref(seeded.named["a.prac"])], note=[{"text": mark("a.lab")}]))
    sa.post("a.vital", "a", _obs(pa, VITAL, "Heart rate", encounter=ref(a_enc), note=[{"text": mark("a.vital")}]))
    sa.post("a.linked", "a", _obs(pa, A_LINKED_CODE, "Family history", focus=[ref(pb)], derivedFrom=[ref(b_vital)],
                                  note=[{"text": mark("a.linked")}]))
    sa.post("a.condition", "a", {"resourceType": "Condition", "subject": ref(pa), "encounter": ref(a_enc),
                                 "code": {"text": "Hypertension"}, "note": [{"text": mark("a.condition")}]})
    sa.post("a.medreq", "a", {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                              "medicationCodeableConcept": {"text": "Amlodipine 5 mg"}, "subject": ref(pa),
                              "note": [{"text": mark("a.medreq")}]})
    sa.post("a.report", "a", {"resourceType": "DiagnosticReport", "status": "final", "code": coding(LOINC, "58410-2"),
                              "subject": ref(pa), "result": [ref(lab)], "conclusion": mark("a.report")})
    sa.post("a.related", "a", {"resourceType": "RelatedPerson", "patient": ref(pa),
                               "name": [{"family": "Kumar", "given": [mark("a.related")]}]})
    sa.post("a.binary", "a", {"resourceType": "Binary", "contentType": "text/plain", "securityContext": ref(pa),
                              "data": "SE9TUEEtQklOQVJZLVBSSVZBVEU="})    # base64 of HOSPA-BINARY-PRIVATE
    sb.post("b.referral", "b", _obs(pa, "11488-4", "Consult note", derivedFrom=[ref(lab)],
                                    performer=[ref(seeded.named["b.prac"])]))
    seed_referral(client, seeded, sa, pa)
    # A's lab result gets a second version
    current = client.get(f"/fhir/{lab}", headers=auth(tokens["a"])).get_json()
    r = client.put(f"/fhir/{lab}", json={**current, "status": "amended"},
                   headers={**auth(tokens["a"]), "Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.get_data(as_text=True)
    discover(client, seeded, writers={**{k: "a" for r, k in seeded.named.items() if r.startswith("a.")},
                                        **{k: "b" for r, k in seeded.named.items() if r.startswith("b.")}})
    store = app.config["MEDPORT"].store
    Users(store).add("pa-user", PASSWORD, "patient", pa)
    Users(store).add("dr-b", PASSWORD, "practitioner", seeded.named["b.prac"], organization=B)
    # fingerprints: what only the patients' own records hold (names, MRNs, the UHIDs issued on create)
    for role, patient in (("a.patient", pa), ("a.other", pa2)):
        stored = client.get(f"/fhir/{patient}", headers=auth(tokens["a"])).get_json()
        uhids = [i["value"] for i in stored["identifier"] if i["system"].endswith("/sid/uhid")]
        family = stored["name"][0]["family"]
        mrn = [i["value"] for i in stored["identifier"] if i["system"] == MRN_A]
        seeded.fingerprints[role] = {family, *mrn, *uhids, *(u.replace("-", "") for u in uhids)}
    return seeded


def seed_referral(client, seeded: Seeded, sa: Seeder, pa: str) -> None:
    """A orders a CBC for pa at lab C; C reports, attaching the PDF (docs/orders.md, lab order)."""
    order = sa.post("a.order", "a", {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                     "code": coding(LOINC, "58410-2", "CBC panel"), "subject": ref(pa),
                                     "performer": [ref(C)], "note": [{"text": mark("a.order")}]})
    sa.post("a.task", "a", {"resourceType": "Task", "status": "requested", "intent": "order",
                            "code": {"coding": [{"system": TASK_CODES, "code": "fulfill"}]}, "focus": ref(order),
                            "for": ref(pa), "requester": ref(A), "owner": ref(C), "note": [{"text": mark("a.task")}]})
    sc = Seeder(client, auth(mint(client.application, "system/*.cruds", client_id="hosp-c-lis", organization=C)), seeded)
    result = sc.post("a.result", "a", {"resourceType": "DiagnosticReport", "status": "final",
                                       "code": coding(LOINC, "58410-2"), "subject": ref(pa), "basedOn": [ref(order)],
                                       "conclusion": mark("a.result")})
    sc.post("a.resultpdf", "a", {"resourceType": "Binary", "contentType": "application/pdf",
                                 "securityContext": ref(result), "data": RESULT_PDF})


SERVER_DIRECTORY = ("NamingSystem", "CodeSystem", "ValueSet", "SearchParameter", "StructureDefinition")


def discover(client, seeded: Seeded, writers: dict[str, str]) -> None:
    """What the server wrote itself while seeding, read with the exchange's unrestricted tool: a
    Provenance of every write (owned by whoever made the write it records: hospital A, hospital B, or
    the exchange tool, 'server') and directory resources ('shared'). Also the number of versions of
    every resource (seeded.versions) and each Provenance's targets (seeded.targets)."""
    token = auth(mint_for_discovery(client))
    body = client.get("/fhir/_history?_count=1000", headers=token).get_json()
    assert "next" not in {link["relation"] for link in body.get("link", ())}
    n = 0
    for entry in body.get("entry", ()):
        key = entry["fullUrl"].split("/fhir/", 1)[1]
        seeded.versions[key] = seeded.versions.get(key, 0) + 1
        if key in seeded.owner or "resource" not in entry:
            continue
        rtype = key.split("/")[0]
        if rtype == "Provenance":
            refs = [t["reference"] for t in entry["resource"]["target"]]
            targets = {"/".join(r.split("/")[:2]) for r in refs}
            # the versions written (Type/id/_history/n); a bare Patient/id names whom they are about
            written = [writers.get("/".join(r.split("/")[:2]), "server") for r in refs if "/_history/" in r]
            assert written, f"a Provenance of nothing seeded: {entry['resource']}"
            n += 1
            seeded.owner[key] = written[0]
            seeded.named[f"{written[0]}.prov{n}"] = key
            seeded.targets[key] = targets
        elif rtype in SERVER_DIRECTORY:
            seeded.owner[key] = "shared"
        else:
            raise AssertionError(f"the server wrote {key} while seeding: the table does not know what it is")


def mint_for_discovery(client) -> str:
    return mint(client.application, "system/*.cruds", client_id="exchange-tool")


_AMB = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}


def _obs(patient: str, code: str, display: str, **fields) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": coding(LOINC, code, display),
            "subject": ref(patient), "valueQuantity": {"value": 1, "unit": "1"}, **fields}


def consent_for(patient_key: str, classes=("Observation",), actor=B, status="active") -> dict:
    provision = {"type": "permit", "class": [{"system": RT, "code": c} for c in classes]}
    if actor:
        provision["actor"] = [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                    "code": "IRCP"}]}, "reference": ref(actor)}]
    return {"resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": ref(patient_key),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": provision}


class OrgTemplate(Template):
    """The hospitals' world, seeded once per store and copied for each test (tests/smart_auth/_tokens.py)."""

    def seed(self, app):
        return seed(app)


# ---- the harness ----------------------------------------------------------------------------------

class H:
    """One path's run: B's requests (recorded and checked), A's records, the phase of the Consent."""

    def __init__(self, app, seeded: Seeded, who: str, phase: str):
        self.app, self.s, self.who, self.phase = app, seeded, who, phase
        self.client = app.test_client()
        if who == "system":
            self.token = mint(app, "system/*.cruds", client_id="hosp-b-ehr", organization=B)
        else:
            self.token = mint(app, "user/*.cruds", subject="dr-b", client_id="hosp-b-app", role="practitioner",
                              fhirUser=f"{BASE}/{seeded.named['b.prac']}", organization=B)
        self.a_token = auth(mint(app, "system/*.cruds", client_id="hosp-a-ehr", organization=A))
        self.patient_token = auth(mint(app, "patient/*.cruds", subject="pa-user", patient=self.id("a.patient"),
                                       role="patient", fhirUser=f"{BASE}/{self.key('a.patient')}"))
        self.adapter = app.url_map.bind("fhir.test")
        self.exchanges: list[Exchange] = []
        self.phase_at: list[str] = []            # the phase of the Consent when each exchange was made
        self.routes: set[str] = set()
        self.problems: list[str] = []
        self.extra_traces: set[str] = set()
        self.consent: dict | None = None
        if phase != "none":
            self.consent = self.as_patient("POST", "/fhir/Consent", consent_for(self.key("a.patient")), 201)
            if phase == "revoked":
                self.revoke()
        self.snapshot = self.a_state()

    # -- requests as B
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
        self.phase_at.append(self.phase)
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

    def follow(self, url: str, between: Callable[[], None] | None = None) -> list[Exchange]:
        """A search or history and every page after it; between() runs after the first page."""
        pages = [self.get(url, status=200)]
        while True:
            nxt = [link["url"] for link in (pages[-1].json or {}).get("link", ()) if link["relation"] == "next"]
            if not nxt or len(pages) > 50:
                return pages
            if between is not None and len(pages) == 1:
                between()
            parts = urlsplit(nxt[0])
            pages.append(self.get(parts.path + "?" + parts.query, status=200))

    def same_as_absent(self, send: Callable[..., Exchange], *real: str) -> tuple[Exchange, Exchange]:
        fresh = tuple(str(uuid.uuid4()) for _ in real)
        a, b = send(*real), send(*fresh)
        if signature(a, real) != signature(b, fresh):
            self.problem(f"existence oracle: {a} differs from the same request for a nonexistent id, {b}:\n"
                         f"  A's:     {signature(a, real)}\n  absent:  {signature(b, fresh)}")
        return a, b

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.problem(message)

    def problem(self, message: str) -> None:
        self.problems.append(message)

    # -- the patient, hospital A and the system (setup and checks, never recorded)
    def as_patient(self, method: str, url: str, body: dict, status: int) -> dict:
        r = self.client.open(url, method=method, data=json.dumps(body),
                             headers={**self.patient_token, "Content-Type": FHIR_JSON})
        assert r.status_code == status, r.get_data(as_text=True)
        return r.get_json()

    def revoke(self) -> None:
        self.consent = self.as_patient("PUT", f"/fhir/Consent/{self.consent['id']}",
                                       {**self.consent, "status": "inactive"}, 200)
        self.phase = "revoked"

    def activate(self) -> None:
        self.consent = self.as_patient("PUT", f"/fhir/Consent/{self.consent['id']}",
                                       {**self.consent, "status": "active"}, 200)
        self.phase = "consented"

    def as_a(self, method: str, url: str, body=None):
        headers = {**self.a_token, "Accept": FHIR_JSON}
        if body is None:
            return self.client.open(url, method=method, headers=headers)
        return self.client.open(url, method=method, data=json.dumps(body), headers={**headers, "Content-Type": FHIR_JSON})

    # -- the seeded records and what the phase lets B see
    def key(self, role: str) -> str:
        return self.s.named[role]

    def id(self, role: str) -> str:
        return self.s.id(role)

    @property
    def shared(self) -> bool:
        return self.phase == "consented"

    def a_keys(self) -> set[str]:
        keys = set(self.s.of("a"))
        if self.consent is not None:
            keys.add(f"Consent/{self.consent['id']}")
        return keys

    def visible(self, rtype: str | None = None) -> set[str]:
        """B's own records, the directory, and while the Consent is active A's Observations (all about pa)."""
        keys = self.s.of("b") | self.s.of("shared")
        if self.shared:
            keys |= {k for k in self.s.of("a") if k.startswith("Observation/")}
        return {k for k in keys if rtype is None or k.split("/")[0] == rtype}

    def hidden(self, *types: str) -> list[str]:
        return sorted(k for k in self.a_keys() - self.visible() if not types or k.split("/")[0] in types)

    def shown(self, *keys: str) -> set[str]:
        """Those of these keys the phase shows."""
        return {k for k in keys if k in self.visible()}

    def versions(self, keys: set[str]) -> int:
        return sum(self.s.versions.get(k, 1) for k in keys)

    def provenance(self, *targets: str) -> set[str]:
        """The visible Provenances of writes of any of these targets."""
        return {k for k, t in self.s.targets.items() if t & set(targets) and k in self.visible()}

    def a_state(self) -> dict:
        store = self.app.config["MEDPORT"].store
        state = {}
        for key in sorted(self.a_keys()):
            v = store.read(*key.split("/"))
            state[key] = (v.version, v.deleted) if v else None
        return state

    def resnapshot(self) -> None:
        self.snapshot = self.a_state()


def check_responses(h: H) -> None:
    final = h.phase
    for phase in sorted(set(h.phase_at)):
        h.phase = phase
        check_exchanges(h, [ex for ex, p in zip(h.exchanges, h.phase_at) if p == phase])
    h.phase = final
    after = h.a_state()
    if after != h.snapshot:
        changed = {k: (h.snapshot.get(k), after.get(k)) for k in set(after) | set(h.snapshot)
                   if after.get(k) != h.snapshot.get(k)}
        h.problem(f"A's records changed (version, deleted) before -> after: {changed}")


def check_exchanges(h: H, exchanges: list[Exchange]) -> None:
    """The exchanges made in one phase of the Consent, against what that phase hides."""
    hidden = set(h.hidden())
    traces = set(h.extra_traces)
    for key in hidden:
        role = next((r for r, k in h.s.named.items() if k == key), None)
        if role is not None and role not in KNOWN_TO_B + (("a.encounter",) if h.shared else ()):
            traces.add(key.split("/", 1)[1])
        if role is not None:
            traces.add(mark(role))
            traces |= h.s.fingerprints.get(role, set())
        elif key.startswith("Consent/"):
            traces.add(key.split("/", 1)[1])
    if h.key("a.binary") in hidden:
        traces.add("SE9TUEEtQklOQVJZLVBSSVZBVEU")
    if h.key("a.resultpdf") in hidden:
        traces.add(RESULT_PDF.rstrip("="))
    for ex in exchanges:
        if ex.status >= 500:
            h.problem(f"{ex}: server error {ex.body[:300]!r}")
        leaked = sorted(t for t in traces if t in ex.text and t not in ex.sent)
        if leaked:
            h.problem(f"{ex}: the response shows {leaked}: {ex.text[:600]}")
        for r in resources(ex.json):
            key = f"{r['resourceType']}/{r.get('id')}"
            if key in hidden:
                h.problem(f"{ex}: the response holds A's {key}")
            if r["resourceType"] == "Bundle":
                check_total(h, ex, r)


# ---- the table ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Path:
    name: str
    routes: tuple[str, ...]
    run: Callable[[H], None] = field(compare=False)
    phases: tuple[str, ...] = PHASES


PATHS: list[Path] = []


def path(name: str, *routes: str, phases: tuple[str, ...] = PHASES):
    def register(fn):
        PATHS.append(Path(name, routes, fn, phases))
        return fn
    return register


def qs(**params) -> str:
    return urlencode(params)


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


def b_obs(**fields) -> dict:
    """An Observation B writes about its own patient."""
    return {"resourceType": "Observation", "status": "final", "code": coding(LOINC, "29463-7", "Body weight"),
            "subject": ref("Patient/PB"), "valueQuantity": {"value": 60, "unit": "kg"}, **fields}


def mine(h: H, **fields) -> dict:
    return {**b_obs(**fields), "subject": ref(h.key("b.patient"))}


@path("read", READ)
def read_path(h: H):
    h.get(f"/fhir/{h.key('b.vital')}", status=200)
    h.get(f"/fhir/{h.key('a.prac')}", status=200)                   # the directory is open
    for key in sorted(h.a_keys() & h.visible()):
        h.get(f"/fhir/{key}", status=200)
    for key in h.hidden():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}"), rid)


@path("read: A's Binary, raw and as FHIR JSON", READ, VREAD)
def binary_path(h: H):
    rid = h.id("a.binary")
    for accept in ("*/*", "application/octet-stream", "text/plain", FHIR_JSON):
        h.same_as_absent(lambda x, a=accept: h.get(f"/fhir/Binary/{x}", headers={"Accept": a}), rid)
        h.same_as_absent(lambda x, a=accept: h.get(f"/fhir/Binary/{x}/_history/1", headers={"Accept": a}), rid)


@path("HEAD and OPTIONS on A's resources")
def head_options_path(h: H):
    for key in (h.key("a.condition"), h.key("a.patient"), h.key("a.binary")):
        rtype, rid = key.split("/")
        for method in ("HEAD", "OPTIONS"):
            h.same_as_absent(lambda x, t=rtype, m=method: h.call(m, f"/fhir/{t}/{x}"), rid)
            h.same_as_absent(lambda x, t=rtype, m=method: h.call(m, f"/fhir/{t}/{x}/_history/1"), rid)


@path("read and vread variants: _elements, _summary, conditional read headers", READ, VREAD)
def read_variants_path(h: H):
    rid = h.id("a.condition")
    for extra in (qs(_elements="id"), qs(_summary="true"), qs(_summary="text"), qs(_format="json")):
        h.same_as_absent(lambda x, e=extra: h.get(f"/fhir/Condition/{x}?{e}"), rid)
        h.same_as_absent(lambda x, e=extra: h.get(f"/fhir/Condition/{x}/_history/1?{e}"), rid)
    for header in ({"If-None-Match": 'W/"1"'}, {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}):
        h.same_as_absent(lambda x, hd=header: h.get(f"/fhir/Condition/{x}", headers=hd), rid)


@path("vread of A's versions", VREAD)
def vread_path(h: H):
    for key in h.hidden():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/_history/1"), rid)
    lab = h.key("a.lab")
    if lab in h.visible():
        for v in ("1", "2"):
            h.get(f"/fhir/{lab}/_history/{v}", status=200)
    else:
        h.same_as_absent(lambda x: h.get(f"/fhir/Observation/{x}/_history/2"), h.id("a.lab"))


@path("instance history", INSTANCE_HISTORY)
def instance_history_path(h: H):
    for key in h.hidden():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/_history"), rid)
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/_history?{qs(_since='2000-01-01T00:00:00Z')}"), rid)
    lab = h.key("a.lab")
    if lab in h.visible():
        ex = h.get(f"/fhir/{lab}/_history", status=200)
        h.expect(history_keys(ex) == [lab, lab], f"{ex}: {history_keys(ex)}")


@path("type history", TYPE_HISTORY)
def type_history_path(h: H):
    for rtype in TYPES:
        for url in (f"/fhir/{rtype}/_history", f"/fhir/{rtype}/_history?{qs(_since='2000-01-01T00:00:00Z')}"):
            ex = h.get(url, status=200)
            keys = history_keys(ex)
            h.expect(set(keys) == h.visible(rtype) and len(keys) == h.versions(h.visible(rtype)),
                     f"{ex}: {sorted(keys)}")


@path("system history", SYSTEM_HISTORY)
def system_history_path(h: H):
    for url in ("/fhir/_history", f"/fhir/_history?{qs(_since='2000-01-01T00:00:00Z')}"):
        ex = h.get(url, status=200)
        keys = history_keys(ex)
        h.expect(set(keys) == h.visible() and len(keys) == h.versions(h.visible()), f"{ex}: {sorted(keys)}")


@path("history paging: following next links", SYSTEM_HISTORY, TYPE_HISTORY)
def history_paging_path(h: H):
    for url, expected in (("/fhir/_history?_count=2", h.visible()),
                          ("/fhir/Observation/_history?_count=1", h.visible("Observation"))):
        pages = h.follow(url)
        seen = [k for p in pages for k in history_keys(p)]
        h.expect(set(seen) == expected and len(seen) == h.versions(expected), f"{url}: pages show {sorted(seen)}")
        for p in pages:
            total = (p.json or {}).get("total")
            h.expect(total in (None, h.versions(expected)), f"{p}: total {total}")


@path("type search", TYPE_SEARCH)
def type_search_path(h: H):
    for rtype in TYPES:
        expect_search(h, f"/fhir/{rtype}", h.visible(rtype))
        ex = h.get(f"/fhir/{rtype}?_total=accurate&_count=1", status=200)
        h.expect((ex.json or {}).get("total") == len(h.visible(rtype)), f"{ex}: total {(ex.json or {}).get('total')}")


@path("search by _id, identifier, name and _custodian", TYPE_SEARCH)
def id_search_path(h: H):
    for key in h.hidden():
        rtype, rid = key.split("/")
        expect_search(h, f"/fhir/{rtype}?{qs(_id=rid)}", set())
    expect_search(h, "/fhir/Observation?" + qs(_id=",".join(k.split("/")[1] for k in h.a_keys()
                                                             if k.startswith("Observation/"))),
                  h.shown(*(k for k in h.a_keys() if k.startswith("Observation/"))))
    for url in (f"/fhir/Patient?{qs(identifier=f'{MRN_A}|MRN-A-002')}", f"/fhir/Patient?{qs(identifier='MRN-A-002')}",
                "/fhir/Patient?family=Kumar", "/fhir/Patient?name=Menon", "/fhir/Patient?birthdate=1950-04-02&family=Kumar",
                "/fhir/RelatedPerson?name=Kumar", f"/fhir/Patient?_custodian={A}", f"/fhir/Condition?_custodian={A}"):
        expect_search(h, url, set())
    expect_search(h, "/fhir/Patient?birthdate=1950-04-02", {h.key("b.patient")})
    expect_search(h, f"/fhir/Observation?{qs(identifier=f'{LAB_IDS}|LAB-A-1')}", h.shown(h.key("a.lab")))
    expect_search(h, f"/fhir/Observation?_custodian={A}", h.visible("Observation") - h.s.of("b"))
    expect_search(h, f"/fhir/Observation?_custodian={B}", {k for k in h.s.of("b") if k.startswith("Observation/")})


@path("search by references into A's records", TYPE_SEARCH)
def reference_search_path(h: H):
    a_obs = h.visible("Observation") - h.s.of("b")
    pa = h.key("a.patient")
    for url, expected in ((f"/fhir/Observation?subject={pa}", a_obs | {h.key("b.referral")}),
                          (f"/fhir/Observation?patient={h.id('a.patient')}", a_obs | {h.key("b.referral")}),
                          (f"/fhir/Condition?patient={pa}", set()), (f"/fhir/Encounter?patient={pa}", set()),
                          (f"/fhir/MedicationRequest?subject={pa}", set()), (f"/fhir/RelatedPerson?patient={pa}", set()),
                          (f"/fhir/Provenance?patient={pa}", h.provenance(pa)), (f"/fhir/Consent?patient={pa}", set()),
                          (f"/fhir/DiagnosticReport?result={h.key('a.lab')}", set()),
                          (f"/fhir/Provenance?target={h.key('a.lab')}", set()),
                          (f"/fhir/Observation?encounter={h.key('a.encounter')}", h.shown(h.key("a.lab"), h.key("a.vital"))),
                          (f"/fhir/Observation?focus={h.key('b.patient')}", h.shown(h.key("a.linked"))),
                          (f"/fhir/Observation?derived-from={h.key('b.vital')}", h.shown(h.key("a.linked"))),
                          (f"/fhir/Observation?code={A_LINKED_CODE}", h.shown(h.key("a.linked"))),
                          (f"/fhir/Observation?performer={h.key('a.prac')}", h.shown(h.key("a.lab"))),
                          ("/fhir/Observation?focus:missing=false", h.shown(h.key("a.linked"))),
                          (f"/fhir/Patient?organization={A}", set()),
                          (f"/fhir/Observation?code={VITAL}", h.shown(h.key("a.vital"), h.key("b.vital")))):
        expect_search(h, url, expected)


@path("chained search", TYPE_SEARCH)
def chain_path(h: H):
    # A's patient is never shared (the Consent covers Observations): no chain through it tells his name
    for url in ("/fhir/Observation?subject:Patient.name=Kumar", "/fhir/Observation?patient.name=Kumar",
                f"/fhir/Observation?{qs(**{'subject:Patient.identifier': 'MRN-A-002'})}",
                "/fhir/Observation?subject:Patient.birthdate=1950-04-02&code=11488-4",
                "/fhir/Observation?encounter.reason-code:text=HOSPA",
                "/fhir/DiagnosticReport?result.code=2345-7", "/fhir/Encounter?patient.identifier=MRN-A-002",
                "/fhir/Observation?subject:Patient.organization=Organization/hosp-a"):
        expect_search(h, url, set())
    # B's referral is derived from A's lab result: the chain sees it only while it is shared
    expect_search(h, f"/fhir/Observation?{qs(**{'derived-from:Observation.code': f'{LOINC}|{A_LAB_CODE}'})}",
                  h.shown(h.key("b.referral")) if h.shared else set())
    expect_search(h, "/fhir/Observation?derived-from:Observation.status=amended",
                  {h.key("b.referral")} if h.shared else set())
    expect_search(h, "/fhir/Observation?subject:Patient.name=Sharma", {h.key("b.vital")})
    expect_search(h, "/fhir/Observation?derived-from.subject:Patient.name=Sharma", h.shown(h.key("a.linked")))


@path("reverse chain _has", TYPE_SEARCH)
def has_path(h: H):
    for url in (f"/fhir/Patient?_has:Observation:subject:code={A_LAB_CODE}",
                "/fhir/Patient?_has:Condition:patient:code:text=Hypertension",
                "/fhir/Patient?_has:Consent:patient:status=active",
                f"/fhir/Encounter?_has:Observation:encounter:code={A_LAB_CODE}",
                "/fhir/Practitioner?_has:Condition:asserter:code:text=Hypertension",
                f"/fhir/Observation?_has:DiagnosticReport:result:subject={h.key('a.patient')}"):
        expect_search(h, url, set())
    pb = h.key("b.patient")
    expect_search(h, f"/fhir/Patient?_has:Observation:focus:code={A_LINKED_CODE}", {pb} if h.shared else set())
    expect_search(h, f"/fhir/Observation?_has:Observation:derived-from:subject={h.key('a.patient')}",
                  {h.key("b.vital"), h.key("a.lab")} if h.shared else set())
    expect_search(h, f"/fhir/Practitioner?_has:Observation:performer:code={A_LAB_CODE}",
                  {h.key("a.prac")} if h.shared else set())
    expect_search(h, "/fhir/Patient?_has:Condition:patient:code:text=Asthma", {pb})


@path("_include", TYPE_SEARCH)
def include_path(h: H):
    obs = h.visible("Observation")
    referral = h.key("b.referral")
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('b.referral'), _include='Observation:derived-from')}",
                  {referral}, h.shown(h.key("a.lab")))
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('b.referral'), _include='Observation:subject')}", {referral}, set())
    expect_search(h, "/fhir/Observation?_include=Observation:subject", obs, {h.key("b.patient")})
    expect_search(h, "/fhir/Observation?_include=Observation:encounter", obs, {h.key("b.encounter")})
    expect_search(h, "/fhir/Observation?_include=Observation:derived-from", obs, set())
    expect_search(h, "/fhir/Encounter?_include=Encounter:service-provider", {h.key("b.encounter")}, {B})
    expect_search(h, "/fhir/Observation?_include=Observation:performer", obs,
                  {h.key("b.prac")} | ({h.key("a.prac")} if h.shared else set()))


@path("_revinclude", TYPE_SEARCH)
def revinclude_path(h: H):
    obs = h.visible("Observation")
    pb = h.key("b.patient")
    expect_search(h, "/fhir/Patient?_revinclude=Observation:focus", {pb}, h.shown(h.key("a.linked")))
    expect_search(h, "/fhir/Observation?_revinclude=DiagnosticReport:result", obs, set())
    expect_search(h, "/fhir/Observation?_revinclude=Provenance:target", obs, h.provenance(*obs))
    expect_search(h, "/fhir/Patient?_revinclude=Condition:subject", {pb}, {h.key("b.condition")})
    expect_search(h, "/fhir/Practitioner?_revinclude=Observation:performer", h.visible("Practitioner"),
                  {h.key("b.referral")} | h.shown(h.key("a.lab")))
    expect_search(h, f"/fhir/Organization?{qs(_id='hosp-a', _revinclude='Patient:organization')}", {A}, set())
    expect_search(h, f"/fhir/Organization?{qs(_id='hosp-a', _revinclude='Encounter:service-provider')}", {A}, set())


@path("_include:iterate and _revinclude:iterate", TYPE_SEARCH)
def iterate_path(h: H):
    pb = h.key("b.patient")
    expect_search(h, f"/fhir/Patient?{qs(_id=h.id('b.patient'))}&_revinclude=Observation:subject"
                     "&_revinclude:iterate=Observation:derived-from", {pb}, {h.key("b.vital")} | h.shown(h.key("a.linked")))
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('b.referral'))}&_include:iterate=Observation:derived-from"
                     "&_include:iterate=Observation:encounter&_include:iterate=Observation:subject",
                  {h.key("b.referral")}, h.shown(h.key("a.lab")))
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('b.vital'))}&_revinclude:iterate=Observation:derived-from"
                     "&_revinclude:iterate=DiagnosticReport:result&_revinclude:iterate=Provenance:target",
                  {h.key("b.vital")}, h.shown(h.key("a.linked")) | h.provenance(h.key("b.vital")))
    expect_search(h, "/fhir/Practitioner?_revinclude=Observation:performer&_include:iterate=Observation:subject"
                     "&_include:iterate=Observation:encounter&_revinclude:iterate=DiagnosticReport:result",
                  h.visible("Practitioner"), {h.key("b.referral")} | h.shown(h.key("a.lab")))


@path("_include=* and _revinclude=*", TYPE_SEARCH)
def include_star_path(h: H):
    pb = h.key("b.patient")
    expect_search(h, f"/fhir/Observation?{qs(_id=h.id('b.referral'), _include='*')}", {h.key("b.referral")},
                  h.shown(h.key("a.lab")) | {h.key("b.prac"), B})
    expect_search(h, f"/fhir/Patient?{qs(_id=h.id('b.patient'), _revinclude='*')}", {pb},
                  {h.key("b.vital"), h.key("b.condition"), h.key("b.encounter")} | h.shown(h.key("a.linked"))
                  | h.provenance(pb))
    # everything reachable from B's patient: B's records and whatever of A's the phase shows, no more
    ex = expect_search(h, "/fhir/Patient?_include=*&_revinclude:iterate=*&_include:iterate=*", {pb})
    got = set(matches(ex, "include"))
    must = {h.key(r) for r in ("b.vital", "b.condition", "b.encounter")} | h.provenance(pb) | h.shown(h.key("a.linked"))
    h.expect(must <= got <= h.visible() - {pb}, f"{ex}: included {sorted(got)}")


@path("compartment search", COMPARTMENT)
def compartment_path(h: H):
    pa = h.id("a.patient")
    for rtype in COMPARTMENT_TYPES:
        own = {h.key("b.referral")} if rtype == "Observation" else h.provenance(h.key("a.patient")) \
            if rtype == "Provenance" else set()
        expected = (h.visible(rtype) - h.s.of("b") - {h.key("a.linked")} if rtype == "Observation" else set()) | own
        if rtype == "Observation":
            expected |= h.shown(h.key("a.linked"))
        if rtype == "Patient":
            continue
        ex = expect_search(h, f"/fhir/Patient/{pa}/{rtype}", expected)
        h.expect((ex.json or {}).get("total") == len(expected), f"{ex}: total {(ex.json or {}).get('total')}")
        if not expected:
            h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/Patient/{x}/{t}"), pa)
        expect_search(h, f"/fhir/Patient/{h.id('a.other')}/{rtype}", set())
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/Patient/{x}/{t}"), h.id("a.other"))
    expect_search(h, f"/fhir/Patient/{h.id('b.patient')}/Observation", {h.key("b.vital")})
    expect_search(h, f"/fhir/Patient/{pa}/Observation?_include=Observation:subject&_include=Observation:encounter",
                  h.visible("Observation") - {h.key("b.vital")}, set())
    expect_total(h, f"/fhir/Patient/{pa}/Condition?_summary=count", 0)
    expect_total(h, f"/fhir/Patient/{pa}/Observation?_summary=count", 1 + (3 if h.shared else 0))
    for role in ("a.encounter",):
        if not h.shared:
            h.same_as_absent(lambda x: h.get(f"/fhir/Encounter/{x}/Observation"), h.id(role))
    h.same_as_absent(lambda x: h.get(f"/fhir/Encounter/{x}/Condition"), h.id("a.encounter"))


@path("system search (GET /fhir?_type=...)", SYSTEM_SEARCH)
def system_search_path(h: H):
    expect_search(h, "/fhir?_type=Observation,Patient", h.visible("Observation") | h.visible("Patient"))
    expect_search(h, "/fhir?_type=" + ",".join(TYPES), set().union(*(h.visible(t) for t in TYPES)))
    expect_search(h, "/fhir?" + qs(_type="Observation,Patient,Condition",
                                   _id=",".join(k.split("/")[1] for k in h.hidden())), set())
    expect_search(h, "/fhir?" + qs(_type="Patient,RelatedPerson", name="Kumar"), set())
    expect_search(h, f"/fhir?{qs(_type='Observation,Condition', _custodian=A)}", h.visible("Observation") - h.s.of("b"))
    # (includes that are matches too may be listed again; check_responses holds them to the phase)
    expect_search(h, "/fhir?_type=Observation,Patient&_revinclude=Observation:focus&_include:iterate=Observation:subject",
                  h.visible("Observation") | h.visible("Patient"))


@path("system search by POST (/fhir/_search)", SYSTEM_SEARCH_POST)
def system_search_post_path(h: H):
    expect_search(h, "/fhir/_search", h.visible("Observation") | h.visible("Patient"), form=[("_type", "Observation,Patient")])
    expect_search(h, "/fhir/_search", set(), form=[("_type", "Condition,Encounter"), ("subject", h.key("a.patient"))])


@path("search by POST (/fhir/<type>/_search)", TYPE_SEARCH_POST)
def search_post_path(h: H):
    expect_search(h, "/fhir/Observation/_search", h.visible("Observation"), form=[])
    expect_search(h, "/fhir/Condition/_search", set(), form=[("subject", h.key("a.patient"))])
    expect_search(h, "/fhir/Patient/_search", set(), form=[("name", "Kumar")])
    expect_search(h, "/fhir/Patient/_search", {h.key("b.patient")} if h.shared else set(),
                  form=[("_has:Observation:focus:code", A_LINKED_CODE)])


@path("_summary=count totals", TYPE_SEARCH, SYSTEM_SEARCH, COMPARTMENT)
def summary_count_path(h: H):
    for rtype in TYPES:
        expect_total(h, f"/fhir/{rtype}?_summary=count", len(h.visible(rtype)))
    expect_total(h, f"/fhir/Observation?code={A_LAB_CODE}&_summary=count", len(h.shown(h.key("a.lab"))))
    expect_total(h, f"/fhir/Condition?subject={h.key('a.patient')}&_summary=count", 0)
    expect_total(h, "/fhir/Observation?subject:Patient.name=Kumar&_summary=count", 0)
    expect_total(h, f"/fhir/Patient?_has:Observation:focus:code={A_LINKED_CODE}&_summary=count", int(h.shared))
    expect_total(h, "/fhir?_type=Observation,Patient,Condition&_summary=count",
                 len(h.visible("Observation") | h.visible("Patient") | h.visible("Condition")))
    expect_total(h, f"/fhir/Patient/{h.id('a.other')}/Observation?_summary=count", 0)


@path("_total=accurate, _total=estimate and _count=0", TYPE_SEARCH, SYSTEM_SEARCH, COMPARTMENT)
def total_path(h: H):
    for total in ("accurate", "estimate"):
        for url, n in ((f"/fhir/Observation?_total={total}&_count=1", len(h.visible("Observation"))),
                       (f"/fhir/Condition?_total={total}&_count=1", len(h.visible("Condition"))),
                       (f"/fhir/Patient?_total={total}&_count=0", len(h.visible("Patient"))),
                       (f"/fhir?_type=Observation,Patient&_total={total}&_count=1",
                        len(h.visible("Observation") | h.visible("Patient"))),
                       (f"/fhir/Patient/{h.id('a.patient')}/Condition?_total={total}&_count=1", 0)):
            ex = h.get(url, status=200)
            h.expect((ex.json or {}).get("total") == n, f"{ex}: total {(ex.json or {}).get('total')}, expected {n}")


@path("paging: following next links", TYPE_SEARCH, SYSTEM_SEARCH, COMPARTMENT)
def paging_path(h: H):
    obs = h.visible("Observation")
    for url, expected in (("/fhir/Observation?_count=1&_total=accurate", obs),
                          ("/fhir/Observation?_count=2&_sort=-_lastUpdated", obs),
                          ("/fhir/Observation?_count=2&_sort=code", obs),
                          ("/fhir?_type=Observation,Patient,Condition&_count=1",
                           obs | h.visible("Patient") | h.visible("Condition")),
                          (f"/fhir/Patient/{h.id('a.patient')}/Observation?_count=1",
                           obs - {h.key("b.vital")}),
                          ("/fhir/Observation?_count=1&_include=Observation:derived-from", obs)):
        pages = h.follow(url)
        seen = [k for p in pages for k in matches(p)]
        h.expect(sorted(seen) == sorted(expected), f"{url}: pages show {sorted(seen)}, expected {sorted(expected)}")
        for p in pages:
            total = (p.json or {}).get("total")
            h.expect(total in (None, len(expected)), f"{p}: total {total}, expected {len(expected)}")


@path("a paging link issued before the revoke shows nothing of A's after it", TYPE_SEARCH, SYSTEM_SEARCH,
      TYPE_HISTORY, SYSTEM_HISTORY, phases=("consented",))
def paging_across_revoke_path(h: H):
    own_obs = {k for k in h.s.of("b") if k.startswith("Observation/")}
    for url, own in (("/fhir/Observation?_count=1&_total=accurate", own_obs),
                     ("/fhir/Observation?_count=2&_sort=-_lastUpdated&_total=accurate", own_obs),
                     ("/fhir?_type=Observation,Condition&_count=1&_total=accurate",
                      own_obs | {k for k in h.s.of("b") if k.startswith("Condition/")})):
        if h.phase != "consented":
            h.activate()
        pages = h.follow(url, between=h.revoke)
        h.expect(len(pages) > 1, f"{url}: one page only")
        later = [k for p in pages[1:] for k in matches(p)]
        h.expect(set(later) <= own, f"{url}: after the revoke, pages show {sorted(set(later) - own)}")
        for p in pages[1:]:
            total = (p.json or {}).get("total")
            h.expect(total == len(own), f"{p}: total {total} after the revoke, expected {len(own)}")
    h.activate()
    pages = h.follow("/fhir/Observation/_history?_count=1", between=h.revoke)
    later = [k for p in pages[1:] for k in history_keys(p)]
    h.expect(set(later) <= own_obs, f"history after the revoke shows {sorted(set(later) - own_obs)}")
    h.activate()
    pages = h.follow("/fhir/_history?_count=2", between=h.revoke)
    later = [k for p in pages[1:] for k in history_keys(p)]
    h.expect(not set(later) & h.s.of("a"), f"system history after the revoke shows {sorted(set(later) & h.s.of('a'))}")
    h.resnapshot()               # the Consent has new versions


@path("_elements and _summary in searches", TYPE_SEARCH)
def elements_summary_path(h: H):
    hidden_obs = ",".join(k.split("/")[1] for k in h.hidden("Observation", "Condition"))
    for variant in ({"_elements": "subject,note"}, {"_summary": "true"}, {"_summary": "text"}, {"_summary": "false"}):
        expect_search(h, f"/fhir/Observation?{qs(**variant)}", h.visible("Observation"))
        expect_search(h, f"/fhir/Condition?{qs(**variant)}", h.visible("Condition"))
        if hidden_obs:
            expect_search(h, f"/fhir/Observation?{qs(_id=hidden_obs, **variant)}", set())


def read_entries(h: H, cond: str, patient: str) -> list[dict]:
    return [get_entry(u) for u in (f"Condition/{cond}", f"Condition/{cond}/_history/1", f"Patient/{patient}",
                                   f"Patient/{patient}/_history/1", f"Condition/{cond}/$validate")]


def search_entries(h: H, cond: str, patient: str) -> list[dict]:
    return [get_entry(u) for u in (f"Condition?subject=Patient/{patient}", f"Condition?_id={cond}",
                                   f"Patient?_id={patient}", f"Observation?_has:Condition:subject:_id={cond}",
                                   f"Condition?_summary=count&subject=Patient/{patient}",
                                   f"Encounter?_has:Condition:encounter:_id={cond}",
                                   f"Patient/{patient}/Condition", f"Condition?subject:Patient._id={patient}")]


@path("batch and transaction with GET entries", BATCH)
def bundle_get_path(h: H):
    cond, pa2 = h.id("a.condition"), h.id("a.other")
    for kind in ("batch", "transaction"):
        h.same_as_absent(lambda x, p, k=kind: h.call("POST", "/fhir", body=bundle(k, read_entries(h, x, p) +
                                                                                  search_entries(h, x, p))), cond, pa2)
    for i in range(5):
        h.same_as_absent(lambda x, p, i=i: h.call("POST", "/fhir", body=bundle("transaction", [read_entries(h, x, p)[i]])),
                         cond, pa2)
    ex = h.call("POST", "/fhir", body=bundle("batch", [get_entry("Observation?_summary=count"),
                                                       get_entry(f"Observation?_custodian={A}"),
                                                       get_entry(f"Observation/{h.id('a.lab')}")]), status=200)
    inner = [e.get("resource") or {} for e in (ex.json or {}).get("entry", ())]
    h.expect(inner[0].get("total") == len(h.visible("Observation")), f"{ex}: count {inner[0].get('total')}")
    h.expect(set(matches(Exchange("", "", "", 200, {}, json.dumps(inner[1]).encode())))
             == h.visible("Observation") - h.s.of("b"), f"{ex}: {inner[1]}")
    lab_status = (ex.json or {})["entry"][2]["response"]["status"]
    h.expect(lab_status.startswith("200" if h.shared else "404"), f"{ex}: lab read {lab_status}")


LANGUAGE_PATCH = [{"op": "add", "path": "/language", "value": "en"}]


def patch_binary(ops: list) -> dict:
    import base64
    return {"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(ops).encode()).decode()}


@path("batch and transaction: PUT, PATCH and DELETE entries on A's ids", BATCH)
def bundle_writes_path(h: H):
    def entries(x, p):
        return [{"resource": {"resourceType": "Condition", "id": x, "subject": ref(h.key("b.patient")),
                              "code": {"text": "x"}}, "request": {"method": "PUT", "url": f"Condition/{x}"}},
                {"resource": patch_binary(LANGUAGE_PATCH), "request": {"method": "PATCH", "url": f"Condition/{x}"}},
                {"request": {"method": "DELETE", "url": f"Condition/{x}"}},
                {"request": {"method": "DELETE", "url": f"Patient/{p}"}},
                {"request": {"method": "DELETE", "url": f"Condition/{x}", "ifMatch": 'W/"1"'}}]
    cond, pa = h.id("a.condition"), h.id("a.patient")
    h.same_as_absent(lambda x, p: h.call("POST", "/fhir", body=bundle("batch", entries(x, p)), status=200), cond, pa)
    for i in range(5):
        h.same_as_absent(lambda x, p, i=i: h.call("POST", "/fhir", body=bundle("transaction", [entries(x, p)[i]])),
                         cond, pa)
    # an Observation of A's that B sees (shared) is still A's to change
    lab = h.id("a.lab")
    for entry in ({"resource": {**mine(h), "id": lab}, "request": {"method": "PUT", "url": f"Observation/{lab}"}},
                  {"resource": patch_binary(LANGUAGE_PATCH), "request": {"method": "PATCH", "url": f"Observation/{lab}"}},
                  {"request": {"method": "DELETE", "url": f"Observation/{lab}"}}):
        ex = h.call("POST", "/fhir", body=bundle("transaction", [entry]))
        h.expect(ex.status in ((403,) if h.shared else (404,)), f"{ex}: {ex.body[:300]!r}")


@path("transaction and batch: conditional references to A's patient", BATCH)
def conditional_reference_path(h: H):
    def tx(kind, criteria):
        entry = {"fullUrl": "urn:uuid:5d1c6f0e-3b0a-4c43-9d0e-5b2f3f1d2a10",
                 "resource": {**mine(h), "subject": ref(f"Patient?{criteria}")},
                 "request": {"method": "POST", "url": "Observation"}}
        return h.call("POST", "/fhir", body=bundle(kind, [entry]))
    for kind in ("transaction", "batch"):
        h.same_as_absent(lambda x, k=kind: tx(k, qs(identifier=f"{MRN_A}|{x}")), "MRN-A-002")
        h.same_as_absent(lambda x, k=kind: tx(k, qs(_id=x)), h.id("a.patient"))
        h.same_as_absent(lambda x, k=kind: tx(k, qs(family=x)), "Kumar")
    # a criterion A's patients and B's meet resolves to B's alone
    ex = tx("transaction", qs(birthdate="1950-04-02"))
    h.expect(ex.status == 200, f"{ex}: {ex.body[:300]!r}")
    if ex.status == 200:
        location = ex.json["entry"][0]["response"]["location"]
        stored = h.as_a("GET", "/fhir/" + location.split("/_history")[0])
        h.expect(stored.status_code == 404, "A sees B's new Observation")


@path("conditional create (If-None-Exist) matching A's records", CREATE, BATCH)
def conditional_create_path(h: H):
    for criteria in (qs(identifier=f"{LAB_IDS}|LAB-A-1"), qs(_id=h.id("a.vital")), f"subject={h.key('a.patient')}",
                     "subject:Patient.name=Kumar", f"focus={h.key('b.patient')}", f"_custodian={A}"):
        shared = {"identifier": h.shown(h.key("a.lab")), "_id=": h.shown(h.key("a.vital")),
                  "subject=": h.shown(h.key("a.lab"), h.key("a.vital"), h.key("a.linked"), h.key("b.referral")),
                  "subject:": set(), "focus": h.shown(h.key("a.linked")),
                  "_custodian": h.shown(h.key("a.lab"), h.key("a.vital"), h.key("a.linked"))}
        found = next(v for k, v in shared.items() if criteria.startswith(k))
        ex = h.call("POST", "/fhir/Observation", body=mine(h), headers={"If-None-Exist": criteria},
                    status={0: 201, 1: 200}.get(len(found), 412))
        if ex.status == 201:
            h.expect(ex.json["subject"] == ref(h.key("b.patient")), f"{ex}: {ex.json}")
        entry = {"resource": mine(h), "request": {"method": "POST", "url": "Observation", "ifNoneExist": criteria}}
        ex = h.call("POST", "/fhir", body=bundle("transaction", [entry]), status=200 if len(found) <= 1 else 412)
    for criteria in (f"subject={h.key('a.patient')}", "code:text=Hypertension", f"_custodian={A}&code:text=Hypertension"):
        h.call("POST", "/fhir/Condition", body={"resourceType": "Condition", "subject": ref(h.key("b.patient")),
                                                "code": {"text": "Bronchitis"}},
               headers={"If-None-Exist": criteria}, status=201)


@path("conditional update matching A's records", CONDITIONAL_UPDATE)
def conditional_update_path(h: H):
    body = {"resourceType": "Condition", "subject": ref(h.key("b.patient")), "code": {"text": "x"}}
    for criteria in (f"subject={h.key('a.patient')}", qs(_id=h.id("a.condition")), "patient.name=Kumar",
                     "code:text=Hypertension", f"_custodian={A}"):
        ex = h.call("PUT", f"/fhir/Condition?{criteria}", body=body, status=201)
        if ex.status == 201:
            h.expect(ex.json["id"] != h.id("a.condition"), f"{ex}: wrote {ex.json['id']}")
    h.same_as_absent(lambda x: h.call("PUT", f"/fhir/Condition?{qs(_id=x)}", body={**body, "id": x}),
                     h.id("a.condition"))
    # an Observation of A's that B sees is matched but stays A's to change
    ex = h.call("PUT", f"/fhir/Observation?{qs(identifier=f'{LAB_IDS}|LAB-A-1')}", body=mine(h))
    h.expect(ex.status == (403 if h.shared else 201), f"{ex}: {ex.body[:300]!r}")


@path("conditional delete matching A's records", CONDITIONAL_DELETE)
def conditional_delete_path(h: H):
    for url in (f"/fhir/Condition?subject={h.key('a.patient')}", f"/fhir/Condition?{qs(_id=h.id('a.condition'))}",
                f"/fhir/Patient?{qs(identifier=f'{MRN_A}|MRN-A-002')}", f"/fhir/Patient?_id={h.id('a.other')}",
                "/fhir/Encounter?patient.name=Kumar", f"/fhir/MedicationRequest?_custodian={A}"):
        h.call("DELETE", url, status=204)
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/Condition?{qs(_id=x)}"), h.id("a.condition"))
    ex = h.call("DELETE", f"/fhir/Observation?{qs(_id=h.id('a.vital'))}")
    h.expect(ex.status == (403 if h.shared else 204), f"{ex}: {ex.body[:300]!r}")


@path("conditional patch matching A's records", CONDITIONAL_PATCH)
def conditional_patch_path(h: H):
    for criteria in (f"subject={h.key('a.patient')}", qs(_id=h.id("a.condition")), "patient.name=Kumar",
                     "code:text=Hypertension", f"_custodian={A}"):
        h.call("PATCH", f"/fhir/Condition?{criteria}", patch=LANGUAGE_PATCH, status=404)
    h.same_as_absent(lambda x: h.call("PATCH", f"/fhir/Condition?{qs(_id=x)}", patch=LANGUAGE_PATCH),
                     h.id("a.condition"))
    # an Observation of A's that B sees is matched but stays A's to change
    ex = h.call("PATCH", f"/fhir/Observation?{qs(identifier=f'{LAB_IDS}|LAB-A-1')}", patch=LANGUAGE_PATCH)
    h.expect(ex.status == (403 if h.shared else 404), f"{ex}: {ex.body[:300]!r}")


@path("update (PUT) on A's ids", UPDATE)
def update_path(h: H):
    for key in h.hidden():
        rtype, rid = key.split("/")
        stored = h.as_a("GET", f"/fhir/{key}").get_json() or {"resourceType": rtype}
        copy = {k: v for k, v in stored.items() if k not in ("meta", "data", "text")}
        h.same_as_absent(lambda x, t=rtype, c=copy: h.call("PUT", f"/fhir/{t}/{x}", body={**c, "id": x}), rid)
    h.same_as_absent(lambda x: h.call("PUT", f"/fhir/Condition/{x}", headers={"If-Match": 'W/"1"'},
                                      body={"resourceType": "Condition", "id": x, "subject": ref(h.key("b.patient"))}),
                     h.id("a.condition"))
    for key in sorted(h.a_keys() & h.visible()):
        h.call("PUT", f"/fhir/{key}", body={**mine(h), "id": key.split("/")[1]}, status=403)


@path("patch on A's ids", PATCH)
def patch_path(h: H):
    for key in h.hidden():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.call("PATCH", f"/fhir/{t}/{x}", patch=LANGUAGE_PATCH), rid)
    for key in sorted(h.a_keys() & h.visible()):
        h.call("PATCH", f"/fhir/{key}", patch=LANGUAGE_PATCH, status=403)


@path("delete on A's ids", DELETE)
def delete_path(h: H):
    for key in h.hidden():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.call("DELETE", f"/fhir/{t}/{x}"), rid)
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/Condition/{x}", headers={"If-Match": 'W/"1"'}),
                     h.id("a.condition"))
    for key in sorted(h.a_keys() & h.visible()):
        h.call("DELETE", f"/fhir/{key}", status=403)


@path("$validate on A's instances", INSTANCE_OP_GET, INSTANCE_OP_POST)
def validate_instance_path(h: H):
    h.get(f"/fhir/{h.key('b.vital')}/$validate", status=200)
    for key in h.hidden():
        rtype, rid = key.split("/")
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/{t}/{x}/$validate"), rid)
    h.same_as_absent(lambda x: h.call("POST", f"/fhir/Condition/{x}/$validate", body={"resourceType": "Parameters"}),
                     h.id("a.condition"))


@path("health cards, registration codes and $match for A's patient", INSTANCE_OP_GET, INSTANCE_OP_POST, TYPE_OP_POST)
def health_card_and_match_path(h: H):
    for patient in (h.id("a.patient"), h.id("a.other")):
        for fmt in ("json", "png", "file"):
            h.same_as_absent(lambda x, f=fmt: h.get(f"/fhir/Patient/{x}/$health-card?format={f}"), patient)
        h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$health-card",
                                          body={"resourceType": "Parameters"}), patient)
        h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$registration-code"), patient)
        h.same_as_absent(lambda x: h.call("POST", f"/fhir/Patient/{x}/$revoke-health-cards"), patient)
    uhids = sorted(u for u in h.s.fingerprints["a.patient"] if u.count("-") == 3)
    assert uhids
    probe = {"resourceType": "Patient", "name": [{"family": "Kumar"}], "birthDate": "1950-04-02",
             "identifier": [{"system": MRN_A, "value": "MRN-A-002"}] + [
                 {"system": f"{BASE}/sid/uhid", "value": u} for u in uhids]}
    for only_certain in ("false", "true"):
        ex = h.call("POST", "/fhir/Patient/$match", status=200, body={"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": probe}, {"name": "onlyCertainMatches", "valueBoolean": only_certain == "true"}]})
        h.expect((ex.json or {}).get("total") == 0, f"{ex}: $match found candidates outside B's reach")


@path("a referral from A to lab C: B reaches none of its order, task, patient, report or PDF",
      READ, TYPE_SEARCH, TYPE_HISTORY, INSTANCE_HISTORY, COMPARTMENT, CREATE)
def referral_path(h: H):
    pa, order, task, result, pdf = (h.key(r) for r in ("a.patient", "a.order", "a.task", "a.result", "a.resultpdf"))
    orgs = h.visible("Organization")
    for url in (f"/fhir/Task?focus={order}", f"/fhir/Task?patient={pa}", f"/fhir/Task?owner={C}",
                f"/fhir/Task?requester={A}", "/fhir/Task?status=requested", f"/fhir/ServiceRequest?subject={pa}",
                f"/fhir/ServiceRequest?performer={C}", f"/fhir/DiagnosticReport?based-on={order}",
                f"/fhir/Binary?security-context={result}", f"/fhir/Binary?_id={pdf.split('/')[1]}",
                "/fhir/Task?patient.name=Kumar", "/fhir/Task?focus:ServiceRequest.code=58410-2",
                f"/fhir/DiagnosticReport?based-on:ServiceRequest.performer={C}",
                "/fhir/Binary?security-context:DiagnosticReport.code=58410-2",
                f"/fhir/Patient?_has:Task:patient:owner={C}", "/fhir/ServiceRequest?_has:Task:focus:status=requested",
                f"/fhir/Patient?_has:ServiceRequest:subject:performer={C}",
                "/fhir/DiagnosticReport?_has:Binary:security-context:_id=" + pdf.split("/")[1]):
        expect_search(h, url, set())
    for url in ("/fhir/Task?_include=Task:focus&_include=Task:patient&_include=Task:owner",
                "/fhir/DiagnosticReport?_include=DiagnosticReport:based-on&_revinclude=Binary:security-context"):
        expect_search(h, url, set(), set())
    expect_search(h, "/fhir/Organization?_revinclude=Task:owner&_revinclude=ServiceRequest:performer"
                     "&_revinclude:iterate=DiagnosticReport:based-on", orgs, set())
    expect_search(h, f"/fhir/Organization?{qs(_id='hosp-c')}&_has:Task:owner:status=requested", set())
    for rtype in ("Task", "ServiceRequest", "DiagnosticReport"):
        expect_search(h, f"/fhir/Patient/{h.id('a.patient')}/{rtype}", set())
        h.same_as_absent(lambda x, t=rtype: h.get(f"/fhir/Patient/{x}/{t}"), h.id("a.patient"))
        expect_search(h, f"/fhir/{rtype}/_history", set())
    for key in (order, task, result, pdf):
        rtype, rid = key.split("/")
        for suffix in ("", "/_history", "/_history/1"):
            h.same_as_absent(lambda x, t=rtype, s=suffix: h.get(f"/fhir/{t}/{x}{s}"), rid)
    # B cannot borrow A's order for a Task of its own, nor place one for a patient it cannot read
    mine_task = {"resourceType": "Task", "status": "requested", "intent": "order", "owner": ref(B),
                 "code": {"coding": [{"system": TASK_CODES, "code": "fulfill"}]}, "for": ref(pa)}
    h.same_as_absent(lambda x: h.call("POST", "/fhir/Task", body={**mine_task, "focus": ref(f"ServiceRequest/{x}")},
                                      status=403), h.id("a.order"))

    def place(patient: str) -> Exchange:
        sr = h.call("POST", "/fhir/ServiceRequest", status=201, body={
            "resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": {"text": "CBC"},
            "subject": ref(f"Patient/{patient}"), "performer": [ref(B)]})
        return h.call("POST", "/fhir/Task", status=403, body={**mine_task, "for": ref(f"Patient/{patient}"),
                                                              "focus": ref(f"ServiceRequest/{(sr.json or {}).get('id')}")})
    h.same_as_absent(place, h.id("a.patient"))
    expect_search(h, "/fhir/Patient", h.visible("Patient"))


AUDIT_LOG = ("GET /fhir/$audit-checkpoint", "GET /fhir/$audit-proof", "GET /fhir/$audit-consistency",
             "GET /fhir/$audit-entries")


@path("the audit log's checkpoint, proofs and entries: regulators and administrators only", *AUDIT_LOG)
def audit_log_path(h):
    for url in ("/fhir/$audit-checkpoint", "/fhir/$audit-proof?index=0&size=1", "/fhir/$audit-consistency?from=1&to=2",
                "/fhir/$audit-entries?start=0&end=10"):
        h.get(url, status=403)


@path("type and system level operations", TYPE_OP_GET, TYPE_OP_POST, SYSTEM_OP_GET, SYSTEM_OP_POST)
def operations_path(h: H):
    h.call("POST", "/fhir/Observation/$validate", body=mine(h), status=200)
    h.get(f"/fhir/CodeSystem/$lookup?{qs(system=LOINC, code=A_LAB_CODE)}", status=404)
    h.get(f"/fhir/$lookup?{qs(system=LOINC, code=A_LAB_CODE)}", status=404)
    h.call("POST", "/fhir/$validate", body={"resourceType": "Parameters"}, status=404)
    h.same_as_absent(lambda x: h.get(f"/fhir/Patient/{x}/$everything"), h.id("a.patient"))
    h.same_as_absent(lambda x: h.get(f"/fhir/Patient/$everything?{qs(patient=x)}"), h.id("a.patient"))


@path("A's deleted resources", READ, VREAD, INSTANCE_HISTORY)
def deleted_path(h: H):
    for role in ("a.condition", "a.vital"):
        assert h.as_a("DELETE", f"/fhir/{h.key(role)}").status_code == 204
    h.resnapshot()
    for role in ("a.condition", "a.vital"):
        rtype, rid = h.key(role).split("/")
        for suffix in ("", "/_history", "/_history/1", "/_history/2", "/$validate"):
            h.same_as_absent(lambda x, t=rtype, s=suffix: h.get(f"/fhir/{t}/{x}{s}"), rid)
        h.same_as_absent(lambda x, t=rtype: h.call("PATCH", f"/fhir/{t}/{x}", patch=LANGUAGE_PATCH), rid)
        h.same_as_absent(lambda x, t=rtype: h.call("DELETE", f"/fhir/{t}/{x}"), rid)


@path("versions of an A record that moved from a patient who did not consent to one who did", VREAD,
      INSTANCE_HISTORY, TYPE_HISTORY, SYSTEM_HISTORY)
def moved_path(h: H):
    first = _obs(h.key("a.other"), A_LAB_CODE, "Glucose", note=[{"text": "HOSPA-MOVED-PRIVATE filed under pa2"}])
    r = h.as_a("POST", "/fhir/Observation", first)
    assert r.status_code == 201
    moved = r.get_json()
    assert h.as_a("PUT", f"/fhir/Observation/{moved['id']}", {**moved, "subject": ref(h.key("a.patient")),
                                                                "note": [{"text": "now about pa"}]}).status_code == 200
    h.extra_traces.add("HOSPA-MOVED-PRIVATE")
    h.get(f"/fhir/Observation/{moved['id']}", status=200 if h.shared else 404)
    h.get(f"/fhir/Observation/{moved['id']}/_history/1", status=404)
    h.get(f"/fhir/Observation/{moved['id']}/_history")
    h.get("/fhir/Observation/_history")
    h.get("/fhir/_history")


@path("subscriptions: A's like an absent one; B's own events hold nothing of A's", READ, VREAD, INSTANCE_HISTORY,
      UPDATE, DELETE, TYPE_SEARCH, CREATE, INSTANCE_OP_GET, INSTANCE_OP_POST)
def subscriptions_path(h: H):
    from tests.subscriptions._probe import probe_others_subscription
    from tests.subscriptions._world import subscription
    r = h.as_a("POST", "/fhir/Subscription", subscription("https://hooks.example.org/a", "diagnostic-report-final"))
    assert r.status_code == 201, r.get_data(as_text=True)
    theirs = r.get_json()
    mine = (h.call("POST", "/fhir/Subscription", status=201, body=subscription(
        "https://hooks.example.org/b", "diagnostic-report-final", content="full-resource")).json or {}).get("id")
    report = h.as_a("GET", f"/fhir/{h.key('a.report')}").get_json()
    report["status"] = "amended"                 # fires A's subscription; B may not read the report
    assert h.as_a("PUT", f"/fhir/{h.key('a.report')}", report).status_code == 200
    h.resnapshot()
    probe_others_subscription(h, theirs)
    listed = matches(h.search("/fhir/Subscription"))
    h.expect(listed == [f"Subscription/{mine}"], f"B's Subscription search listed {listed}")
    events = h.get(f"/fhir/Subscription/{mine}/$events?content=full-resource", status=200).json or {}
    h.expect(len(events.get("entry", ())) == 1, "B's subscription has an event of A's report")


@path("bulk export: exactly what B may search, files and status only for B's own exports",
      *BULK_KICKOFFS, *BULK_STATUS, BULK_FILES)
def bulk_export_path(h: H):
    from fhirserver.bulk.worker import Worker
    kick = {"Prefer": "respond-async"}
    worker = Worker(h.app.config["MEDPORT"])
    started = h.client.get("/fhir/$export", headers={**h.a_token, **kick})    # A's own export
    a_job = started.headers["Content-Location"].rsplit("/", 1)[1]
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "member": [{"entity": ref(h.key("a.patient"))}, {"entity": ref(h.key("b.patient"))}]}
    created = h.call("POST", "/fhir/Group", body=group, status=201)
    group_id = (created.json or {}).get("id", "none")
    patients = {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": ref(h.key("a.patient"))}]}
    kickoffs = [("GET", "/fhir/$export?_type=Observation,Patient", None), ("POST", "/fhir/$export", None),
                ("GET", "/fhir/Patient/$export?_type=Observation", None),
                ("POST", "/fhir/Patient/$export", patients),
                ("GET", f"/fhir/Group/{group_id}/$export?_type=Observation", None),
                ("POST", f"/fhir/Group/{group_id}/$export", None)]
    for method, url, body in kickoffs:
        ex = h.call(method, url, body=body, headers=kick)
        if h.who != "system":
            h.expect(ex.status == 403, f"{ex}: only backend services export")
            continue
        h.expect(ex.status == 202, f"{ex}: expected 202")
        status = urlsplit(ex.headers.get("Content-Location", "")).path
        worker.run_once()
        manifest = h.get(status, status=200).json or {}
        exported = set()
        for item in manifest.get("output", ()):
            f = h.get(urlsplit(item["url"]).path, status=200)
            exported |= {f"{r['resourceType']}/{r['id']}" for r in map(json.loads, f.body.splitlines())}
        h.expect(not exported & set(h.hidden()), f"{ex}: the export holds A's {sorted(exported & set(h.hidden()))}")
        if url.startswith("/fhir/$export?"):
            observations = {k for k in exported if k.startswith("Observation/")}
            h.expect(observations == h.visible("Observation") | {k for k in observations if k not in h.a_keys()},
                     f"{ex}: exported {sorted(observations)}, B may search {sorted(h.visible('Observation'))}")
        h.call("DELETE", status, status=202)
    h.same_as_absent(lambda x: h.get(f"/fhir/bulk-status/{x}"), a_job)
    h.same_as_absent(lambda x: h.get(f"/fhir/bulk-files/{x}/0.ndjson"), a_job)
    h.same_as_absent(lambda x: h.call("DELETE", f"/fhir/bulk-status/{x}"), a_job)


# ---- running the table ----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=STORES)
def template(tmp_path_factory, request):
    return OrgTemplate(tmp_path_factory.mktemp("orgs"), request.param, **LEAK_SETTINGS)


def cases():
    for p in PATHS:
        for phase in p.phases:
            for who in TOKENS:
                yield pytest.param(p, phase, who, id=f"{p.name}-{phase}-{who}")


@pytest.mark.parametrize("leak_path,phase,who", list(cases()))
def test_no_path_leaks_another_hospitals_records(template, tmp_path, leak_path: Path, phase: str, who: str):
    h = H(template.copy(tmp_path), template.seeded, who, phase)
    leak_path.run(h)
    check_responses(h)
    missing = sorted(set(leak_path.routes) - h.routes)
    assert not missing, f"the path claims routes it did not exercise: {missing}"
    assert not h.problems, f"{leak_path.name} ({phase}, {who}):\n- " + "\n- ".join(h.problems)


def test_the_org_table_covers_every_route(template, tmp_path):
    routes = fhir_routes(template.copy(tmp_path))
    exercised = {r for p in PATHS for r in p.routes}
    assert not sorted(routes - exercised - set(OPEN)), "FHIR routes no path of the table exercises"
    assert not sorted((exercised | set(OPEN)) - routes), "the table names routes the app does not have"


def test_a_nested_deny_naming_the_hospital_shares_nothing_with_it(template, tmp_path):
    h = H(template.copy(tmp_path), template.seeded, "system", "none")
    consent = consent_for(h.key("a.patient"), classes=(), actor=None)
    if not consent["provision"].get("class"):
        consent["provision"].pop("class", None)          # every type (an empty array is not valid JSON FHIR)
    consent["provision"]["provision"] = [{"type": "deny", "actor": [{
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
        "reference": ref(B)}]}]
    h.as_patient("POST", "/fhir/Consent", consent, 201)
    expect_search(h, "/fhir/Observation", h.visible("Observation"))
    assert not h.problems, h.problems
