"""Patient/[id]/$everything and Patient/$everything (docs/everything.md), over HTTP with real tokens on
both stores: the compartment plus the Practitioners, Organizations, Locations and Medications it refers
to, each once; paging by next links with no duplicates or gaps, also across writes; _type, _since,
start/end and _count; a patient's token and a hospital's token see only what they may see elsewhere;
the call is audited."""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest

from fhirserver.audit_log import journal
from fhirserver.smart_auth.accounts import Users
from tests.conftest import STORES
from tests.governance.test_policy import World as policy_world
from tests.smart_auth._tokens import BASE, make_app, mint

A, B = "Organization/hosp-a", "Organization/hosp-b"
OPERATION = "https://medport.health/fhir/CodeSystem/operation"
QUIET = {"audit_access": "off"}      # the requests' own AuditEvents would join the patient's compartment


def ref(key: str) -> dict:
    return {"reference": key}


def obs(patient: str, when: str | None = None, performer: str | None = None) -> dict:
    o = {"resourceType": "Observation", "status": "final", "code": {"text": f"taken {when}"},
         "subject": ref(f"Patient/{patient}")}
    if when:
        o["effectiveDateTime"] = when
    if performer:
        o["performer"] = [ref(performer)]
    return o


class World(policy_world):
    """Hospital A holds p1 and p2, hospital B holds p3; a directory of practitioners, organisations,
    a location and a medication; p1's records have dates in 2019, 2021 and 2023 and one without.
    send, create and put are the governance tests' World's."""

    def __init__(self, tmp_path, backend, **settings):
        self.app = make_app(tmp_path, backend, **settings)
        self.client = self.app.test_client()
        self.exchange = mint(self.app, "system/*.cruds", client_id="exchange-tool")     # no organisation
        self.a = mint(self.app, "system/*.cruds", client_id="hosp-a-ehr", organization=A)
        self.b = mint(self.app, "system/*.cruds", client_id="hosp-b-ehr", organization=B)
        for org in (A, B):
            self.put(self.exchange, {"resourceType": "Organization", "id": org.split("/")[1], "name": org})
        for pid in ("prac-1", "prac-2", "prac-unused"):
            self.put(self.exchange, {"resourceType": "Practitioner", "id": pid, "name": [{"family": pid}]})
        self.put(self.exchange, {"resourceType": "Location", "id": "ward-1", "name": "Ward 1"})
        self.put(self.exchange, {"resourceType": "Medication", "id": "amlodipine", "code": {"text": "Amlodipine"}})
        self.p1 = self.create(self.a, {"resourceType": "Patient", "name": [{"family": "Rao"}],
                                       "generalPractitioner": [ref("Practitioner/prac-1")],
                                       "managingOrganization": ref(A)})
        self.p2 = self.create(self.a, {"resourceType": "Patient", "name": [{"family": "Das"}]})
        self.p3 = self.create(self.b, {"resourceType": "Patient", "name": [{"family": "Sen"}]})
        self.o2019 = self.create(self.a, obs(self.p1, "2019-05-01", "Practitioner/prac-1"))
        self.o2021 = self.create(self.a, obs(self.p1, "2021-05-01", "Practitioner/prac-1"))
        self.o2023 = self.create(self.a, obs(self.p1, "2023-05-01"))
        self.undated = self.create(self.a, obs(self.p1))
        self.enc = self.create(self.a, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                                        "subject": ref(f"Patient/{self.p1}"),
                                        "period": {"start": "2021-03-01", "end": "2021-03-02"},
                                        "participant": [{"individual": ref("Practitioner/prac-1")}],
                                        "location": [{"location": ref("Location/ward-1")}]})
        self.cond = self.create(self.a, {"resourceType": "Condition", "subject": ref(f"Patient/{self.p1}"),
                                         "code": {"text": "hypertension"}})        # Condition has no `date`
        self.medreq = self.create(self.a, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                                           "subject": ref(f"Patient/{self.p1}"),
                                           "medicationReference": ref("Medication/amlodipine")})
        self.o_p2 = self.create(self.a, obs(self.p2, "2021-01-01", "Practitioner/prac-2"))
        self.o_p3 = self.create(self.b, obs(self.p3, "2021-01-01", "Practitioner/prac-2"))
        Users(self.app.config["MEDPORT"].store).add("p1", "correct horse battery", "patient", f"Patient/{self.p1}")
        self.p1_token = self.patient_token("patient/*.rs")

    def patient_token(self, scope: str) -> str:
        return mint(self.app, scope, subject="p1", patient=self.p1, role="patient", fhirUser=f"{BASE}/Patient/{self.p1}")

    def get(self, token, url, status=200):
        r = self.send(token, "GET", url)
        assert r.status_code == status, r.get_data(as_text=True)
        return r.get_json()

    def everything(self, token, url) -> list[tuple[str, str]]:
        """(Type/id, search mode) of every entry of every page, following the next links."""
        out = []
        for page in self.pages(token, url):
            out += [(f"{e['resource']['resourceType']}/{e['resource']['id']}", e["search"]["mode"])
                    for e in page.get("entry", ())]
        return out

    def pages(self, token, url) -> list[dict]:
        pages = [self.get(token, url)]
        while True:
            nxt = [link["url"] for link in pages[-1]["link"] if link["relation"] == "next"]
            if not nxt:
                return pages
            assert len(pages) < 100
            parts = urlsplit(nxt[0])
            pages.append(self.get(token, f"{parts.path}?{parts.query}"))

    def p1_record(self) -> set[str]:
        return {f"Patient/{self.p1}", *(f"Observation/{i}" for i in (self.o2019, self.o2021, self.o2023, self.undated)),
                f"Encounter/{self.enc}", f"Condition/{self.cond}", f"MedicationRequest/{self.medreq}"}

    def consent(self, patient: str, actor: str) -> dict:
        return {"resourceType": "Consent", "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                      "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": ref(f"Patient/{patient}"),
                "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                           "code": "OPTIN"}]},
                "provision": {"type": "permit", "actor": [{"role": {"coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                    "reference": ref(actor)}]}}


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return World(tmp_path, request.param, **QUIET)


def keys(entries) -> set[str]:
    return {k for k, _mode in entries}


def test_the_record_holds_the_compartment_and_what_it_refers_to_each_once(w):
    got = w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything")
    assert len(got) == len(set(got)), got                       # nothing twice (prac-1 is referenced 4 times)
    referenced = {"Practitioner/prac-1", A, "Location/ward-1", "Medication/amlodipine"}
    match = {k for k, mode in got if mode == "match"}
    assert {k for k, mode in got if mode == "include"} == referenced
    assert w.p1_record() <= match
    assert match - w.p1_record() <= {k for k in match if k.startswith("Provenance/")}   # the writes' Provenance
    assert got[0] == (f"Patient/{w.p1}", "match")              # the Patient comes first
    for absent in ("Practitioner/prac-2", "Practitioner/prac-unused", B, f"Patient/{w.p2}",
                   f"Observation/{w.o_p2}", f"Observation/{w.o_p3}"):
        assert absent not in keys(got)


def test_pages_follow_next_links_without_duplicates_or_gaps_even_across_writes(w):
    whole = w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything")
    pages = w.pages(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_count=2")
    assert all(len(p.get("entry", ())) <= 2 for p in pages) and len(pages) >= len(whole) // 2
    paged = [e for p in pages for e in p.get("entry", ())]
    assert [(f"{e['resource']['resourceType']}/{e['resource']['id']}", e["search"]["mode"]) for e in paged] == whole
    # a write between two pages neither shifts nor repeats what follows (keyset cursors, not offsets)
    first = w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_count=3")
    late = w.create(w.a, obs(w.p1, "2024-01-01"))
    nxt = urlsplit(next(link["url"] for link in first["link"] if link["relation"] == "next"))
    rest = w.everything(w.exchange, f"{nxt.path}?{nxt.query}")
    shown = [k for k, _m in ([(f"{e['resource']['resourceType']}/{e['resource']['id']}", "") for e in first["entry"]]
                             + rest)]
    assert len(shown) == len(set(shown))
    assert keys(whole) <= set(shown) and f"Observation/{late}" in shown


def test_type_restricts_the_types_returned(w):
    got = w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_type=Observation,Practitioner")
    assert keys(got) == {f"Observation/{i}" for i in (w.o2019, w.o2021, w.o2023, w.undated)} | {"Practitioner/prac-1"}
    repeated = w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_type=Observation&_type=Practitioner")
    assert keys(repeated) == keys(got)
    assert keys(w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_type=Patient")) == {f"Patient/{w.p1}"}
    w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_type=Sandwich", status=400)


def test_since_filters_on_last_updated(w):
    whole = w.pages(w.exchange, f"/fhir/Patient/{w.p1}/$everything")[0]["entry"]
    cond = w.get(w.exchange, f"/fhir/Condition/{w.cond}")
    changed = w.put(w.a, {**cond, "code": {"text": "essential hypertension"}})
    since = changed["meta"]["lastUpdated"]
    got = keys(w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_since={since.replace('+', '%2B')}"))
    assert f"Condition/{w.cond}" in got
    older = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in whole
             if e["resource"]["meta"]["lastUpdated"] < since} - {f"Condition/{w.cond}"}     # all but the update
    assert older and not got & older
    w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_since=yesterday", status=400)


def test_start_and_end_select_care_dates_and_keep_the_patient_and_undated_records(w):
    got = keys(w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything?start=2020-01-01&end=2022"))
    assert {f"Observation/{w.o2021}", f"Encounter/{w.enc}", f"Patient/{w.p1}", f"Observation/{w.undated}",
            f"Condition/{w.cond}", f"MedicationRequest/{w.medreq}"} <= got
    assert f"Observation/{w.o2019}" not in got and f"Observation/{w.o2023}" not in got
    assert "Practitioner/prac-1" in got           # referenced by the 2021 Observation and the Encounter
    only_2023 = keys(w.everything(w.exchange, f"/fhir/Patient/{w.p1}/$everything?start=2023-01"))
    assert f"Observation/{w.o2023}" in only_2023 and f"Observation/{w.o2021}" not in only_2023
    assert "Location/ward-1" not in only_2023      # only the 2021 Encounter refers to it
    for bad in ("start=2020-13-01", "end=last-week", "start=2020-01-01T10:00:00Z"):
        w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?{bad}", status=400)


def test_count_sets_the_page_size_capped_by_the_server(w):
    page = w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_count=1")
    assert len(page["entry"]) == 1 and any(link["relation"] == "next" for link in page["link"])
    huge = w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_count=99999999")
    cap = w.app.config["MEDPORT"].settings.max_count
    assert f"_count={cap}" in huge["link"][0]["url"] and not any(link["relation"] == "next" for link in huge["link"])
    for bad in ("_count=0", "_count=-1", "_count=many", "_offset=10"):
        w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?{bad}", status=400)


def test_a_cursor_belongs_to_its_request(w):
    page = w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_count=1")
    cursor = urlsplit(next(link["url"] for link in page["link"] if link["relation"] == "next")).query
    w.get(w.exchange, f"/fhir/Patient/{w.p2}/$everything?{cursor}", status=400)       # another patient
    w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?{cursor}&_type=Observation".replace("_count=1&", ""),
          status=400)
    w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything?_cursor=not-a-cursor", status=400)


def test_an_unknown_or_deleted_patient_answers_as_its_read(w):
    w.get(w.exchange, f"/fhir/Patient/{uuid.uuid4()}/$everything", status=404)
    assert w.send(w.a, "DELETE", f"/fhir/Patient/{w.p2}").status_code in (200, 204)
    read = w.send(w.exchange, "GET", f"/fhir/Patient/{w.p2}")
    assert read.status_code == 410
    w.get(w.exchange, f"/fhir/Patient/{w.p2}/$everything", status=410)


def test_everything_runs_as_a_batch_entry(w):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{w.p1}/$everything?_type=Condition"}}]}
    r = w.send(w.exchange, "POST", "/fhir", batch)
    assert r.status_code == 200, r.get_data(as_text=True)
    entry = r.get_json()["entry"][0]
    assert entry["response"]["status"].startswith("200")
    assert [e["resource"]["id"] for e in entry["resource"]["entry"]] == [w.cond]


def test_post_with_parameters_answers_the_same(w):
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueCode": "Observation"},
                                                        {"name": "start", "valueDate": "2021"},
                                                        {"name": "_count", "valueInteger": 10}]}
    r = w.send(w.exchange, "POST", f"/fhir/Patient/{w.p1}/$everything", body)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {e["resource"]["id"] for e in r.get_json()["entry"]} == {w.o2021, w.o2023, w.undated}


def test_a_patient_token_reaches_only_its_own_record(w):
    own = w.everything(w.p1_token, f"/fhir/Patient/{w.p1}/$everything")
    assert w.p1_record() <= keys(own)
    # patient/ scopes see the patient's compartment only: no directory resources (docs/governance.md)
    assert not {k for k in keys(own) if k.split("/")[0] in ("Practitioner", "Organization", "Location", "Medication")}
    # another patient answers exactly like a patient that does not exist (the same as a read of it)
    for pid in (w.p2, w.p3):
        other = w.send(w.p1_token, "GET", f"/fhir/Patient/{pid}/$everything")
        absent_id = str(uuid.uuid4())
        absent = w.send(w.p1_token, "GET", f"/fhir/Patient/{absent_id}/$everything")
        read = w.send(w.p1_token, "GET", f"/fhir/Patient/{pid}")
        assert other.status_code == absent.status_code == read.status_code == 404
        assert other.get_data(as_text=True).replace(pid, "X") == absent.get_data(as_text=True).replace(absent_id, "X")
    # the type level is the token's own record: the same answer as the instance level
    assert sorted(w.everything(w.p1_token, "/fhir/Patient/$everything")) == sorted(own)


def test_a_hospital_sees_what_it_holds_plus_what_was_consented(w):
    # B holds p3 only: p1's record is out of reach, like a read of p1
    w.get(w.b, f"/fhir/Patient/{w.p1}/$everything", status=404)
    w.get(w.b, f"/fhir/Patient/{w.p1}", status=404)
    b_all = keys(w.everything(w.b, "/fhir/Patient/$everything"))
    assert {f"Patient/{w.p3}", f"Observation/{w.o_p3}", "Practitioner/prac-2"} <= b_all
    assert not b_all & (w.p1_record() | {f"Patient/{w.p2}", f"Observation/{w.o_p2}"})
    # directory resources are open to B, but only A's records refer to these: B does not learn of them here
    assert "Practitioner/prac-1" not in b_all and A not in b_all and "Location/ward-1" not in b_all
    a_all = keys(w.everything(w.a, "/fhir/Patient/$everything"))
    assert w.p1_record() | {f"Patient/{w.p2}", f"Observation/{w.o_p2}", "Practitioner/prac-2"} <= a_all
    assert not a_all & {f"Patient/{w.p3}", f"Observation/{w.o_p3}"}
    # p1 consents to sharing with B: B now sees p1's whole record, held by A
    consent = w.create(w.patient_token("patient/*.cruds"), w.consent(w.p1, B))
    got = keys(w.everything(w.b, f"/fhir/Patient/{w.p1}/$everything"))
    assert w.p1_record() | {f"Consent/{consent}", "Practitioner/prac-1"} <= got
    assert w.p1_record() <= keys(w.everything(w.b, "/fhir/Patient/$everything"))
    assert not keys(w.everything(w.b, "/fhir/Patient/$everything")) & {f"Patient/{w.p2}", f"Observation/{w.o_p2}"}


def test_the_type_level_spans_every_patient_once(w):
    got = w.everything(w.exchange, "/fhir/Patient/$everything?_count=3")
    assert len(got) == len(set(got))
    assert w.p1_record() | {f"Patient/{w.p2}", f"Patient/{w.p3}", f"Observation/{w.o_p2}", f"Observation/{w.o_p3}",
                            "Practitioner/prac-1", "Practitioner/prac-2"} <= keys(got)
    assert "Practitioner/prac-unused" not in keys(got)


def test_a_scope_without_a_type_leaves_that_type_out(w):
    token = mint(w.app, "system/Patient.rs system/Observation.rs", client_id="exchange-reader")
    got = keys(w.everything(token, f"/fhir/Patient/{w.p1}/$everything"))
    assert got == {f"Patient/{w.p1}"} | {f"Observation/{i}" for i in (w.o2019, w.o2021, w.o2023, w.undated)}


def test_everything_is_audited_and_listed(tmp_path, backend):
    w = World(tmp_path, backend)               # audit on
    w.get(w.exchange, f"/fhir/Patient/{w.p1}/$everything")
    ctx = w.app.config["MEDPORT"]
    journal.drain(ctx.store, ctx.base)
    events = [json.loads(v.body) for v in ctx.store.history("AuditEvent", limit=10000).items if v.body]
    mine = [e for e in events if {"system": OPERATION, "code": "$everything", "display": "$everything"}
            in e.get("subtype", ())]
    assert mine
    assert any(en.get("what", {}).get("reference") == f"Patient/{w.p1}" for e in mine for en in e["entity"])
    patient = next(r for r in w.get(w.exchange, "/fhir/metadata")["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"} \
        in patient["operation"]
