"""Patient/[id]/$access-report (docs/audit.md, "Reading the log"), on both stores: the patient reads who
accessed their records, when and why (break the glass: BTG), newest first and page by page; a proxy
acting for them, a regulator and an administrator may ask too; another patient gets 404, a hospital 403.
"""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.accounts import Users
from tests.conftest import STORES
from tests.governance.test_break_glass import Glass
from tests.governance.test_policy import A
from tests.smart_auth._tokens import BASE, mint

PW = "correct horse battery"
BTG = ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "BTG")


class Reported(Glass):
    def __init__(self, tmp_path, backend):
        super().__init__(tmp_path, backend)
        users = Users(self.app.config["MEDPORT"].store)
        users.add("dra", PW, "practitioner", "Practitioner/pa", A)
        users.add("p2", PW, "patient", f"Patient/{self.p2}")
        users.add("inspector", PW, "regulator")
        users.add("root", PW, "admin")
        self.dra = mint(self.app, "user/*.rs", subject="dra", client_id="a-app", role="practitioner",
                        organization=A, fhirUser=f"{BASE}/Practitioner/pa")
        self.p2_token = mint(self.app, "patient/*.cruds", subject="p2", patient=self.p2, role="patient",
                             fhirUser=f"{BASE}/Patient/{self.p2}")
        self.reg = mint(self.app, "user/*.rs", subject="inspector", role="regulator")
        self.admin = mint(self.app, "user/*.cruds", subject="root", role="admin")

    def report(self, token, patient=None, query=""):
        return self.send(token, "GET", f"/fhir/Patient/{patient or self.p1}/$access-report{query}")


def accesses(body: dict) -> list[dict]:
    """Each access part as {name: [values]}."""
    out = []
    for p in body["parameter"]:
        if p["name"] == "access":
            parts: dict = {}
            for part in p["part"]:
                value = part.get("part") or next(v for k, v in part.items() if k.startswith("value"))
                parts.setdefault(part["name"], []).append(value)
            out.append(parts)
    return out


def next_url(body: dict) -> str | None:
    return next((p["valueUri"].replace(BASE, "/fhir") for p in body["parameter"] if p["name"] == "next"), None)


def purposes(access: dict) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in access.get("purpose", ())}


@pytest.fixture(params=STORES)
def r(request, tmp_path):
    return Reported(tmp_path, request.param)


def test_the_patient_sees_who_read_their_record_and_who_broke_the_glass(r):
    assert r.send(r.p1_token, "GET", f"/fhir/Patient/{r.p1}").status_code == 200        # their own read
    assert r.send(r.dra, "GET", f"/fhir/Observation/{r.obs1}").status_code == 200       # A's practitioner
    assert r.glass(r.drb, r.p1, reason="unconscious in the emergency room").status_code == 200
    assert r.send(r.drb, "GET", f"/fhir/Observation/{r.obs1}").status_code == 200       # through the glass
    assert r.glass(r.drb, r.p1, action="stop").status_code == 200

    answer = r.report(r.p1_token, query="?_count=200")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    seen = accesses(answer.get_json())
    whens = [a["when"][0] for a in seen]
    assert whens == sorted(whens, reverse=True)                                       # newest first
    events = [a["event"][0]["reference"] for a in seen]
    assert len(events) == len(set(events)) and all(e.startswith("AuditEvent/") for e in events)

    def entity(a):
        return [x["valueReference"]["reference"] for x in a["what"][0] if x["name"] == "entity"]

    def subtypes(a):
        return {x["valueCoding"]["code"] for x in a["what"][0] if x["name"] == "subtype"}

    read_by_a = [a for a in seen if a["who"] == [{"reference": "Practitioner/pa"}]]
    assert len(read_by_a) == 1
    read_by_a = read_by_a[0]
    assert entity(read_by_a) == [f"Observation/{r.obs1}/_history/1"] and "read" in subtypes(read_by_a)
    assert read_by_a["client"] == ["a-app"] and read_by_a["organization"] == [{"reference": A}]
    assert read_by_a["outcome"] == ["0"] and read_by_a["self"] == [False] and "purpose" not in read_by_a

    by_b = [a for a in seen if a["who"] == [{"reference": "Practitioner/prb"}]]
    glass_read = [a for a in by_b if entity(a) == [f"Observation/{r.obs1}/_history/1"]]
    assert len(glass_read) == 1 and BTG in purposes(glass_read[0]) and glass_read[0]["self"] == [False]
    assert glass_read[0]["organization"] == [{"reference": "Organization/hosp-b"}]
    assert {"110127", "110128"} <= {c for a in by_b for c in subtypes(a)}              # started, stopped
    assert all(BTG in purposes(a) for a in by_b if subtypes(a) & {"110127", "110128"})

    own = [a for a in seen if a["self"] == [True]]
    assert own and all(a["who"] == [{"reference": f"Patient/{r.p1}"}] for a in own)
    assert any(entity(a) == [f"Patient/{r.p1}/_history/1"] for a in own)

    # the regulator and the administrator see the same accesses (and the patient's report call since)
    for token in (r.reg, r.admin):
        other = r.report(token, query="?_count=200")
        assert other.status_code == 200, other.get_data(as_text=True)
        assert set(events) <= {a["event"][0]["reference"] for a in accesses(other.get_json())}


def test_paging_and_since(r):
    for _ in range(4):
        assert r.send(r.dra, "GET", f"/fhir/Observation/{r.obs1}").status_code == 200
    everything = accesses(r.report(r.p1_token, query="?_count=200").get_json())
    url, pages = f"/fhir/Patient/{r.p1}/$access-report?_count=3", []
    while url and len(pages) < 50:
        body = r.send(r.p1_token, "GET", url).get_json()
        pages.append(accesses(body))
        url = next_url(body)
    assert len(pages) > 1 and all(len(p) == 3 for p in pages[:-1])
    paged = [a["event"][0]["reference"] for p in pages for a in p]
    assert len(paged) == len(set(paged))
    # each call is itself an access (newer than the first page), so the pages hold at least everything
    assert {a["event"][0]["reference"] for a in everything} <= set(paged)
    whens = [a["when"][0] for p in pages for a in p]
    assert whens == sorted(whens, reverse=True)
    since = everything[2]["when"][0]
    recent = accesses(r.report(r.p1_token, query=f"?_since={since}&_count=200").get_json())
    assert recent and all(a["when"][0] >= since for a in recent)
    assert {a["event"][0]["reference"] for a in everything if a["when"][0] >= since} <= \
        {a["event"][0]["reference"] for a in recent}


def test_others_may_not_read_a_patients_report(r):
    assert r.send(r.dra, "GET", f"/fhir/Observation/{r.obs1}").status_code == 200
    assert r.report(r.p2_token).status_code == 404                   # another patient: as if not there
    for token in (r.dra, r.drb, r.a, r.exchange):                   # hospitals, their staff and tools
        answer = r.report(token)
        assert answer.status_code == 403, answer.get_data(as_text=True)
        assert answer.get_json()["resourceType"] == "OperationOutcome"
    mine = r.report(r.p2_token, r.p2)
    assert mine.status_code == 200
    assert all(a["event"][0]["reference"] for a in accesses(mine.get_json()))
    assert r.report(r.p1_token, query="?_count=0").status_code == 400


def test_a_proxy_reads_the_report_of_the_patient_who_delegated(tmp_path, monkeypatch, backend):
    from tests.governance.test_proxy import World as Family
    f = Family(tmp_path, monkeypatch, backend)
    f.grant()
    son = f.proxy_token()
    assert f.send(son, "GET", f"/fhir/Patient/{f.mother}").status_code == 200
    answer = f.send(son, "GET", f"/fhir/Patient/{f.mother}/$access-report")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    seen = accesses(answer.get_json())
    assert any(a["who"] == [{"reference": f"RelatedPerson/{f.son}"}] and a["self"] == [False] for a in seen)
    assert any(a["self"] == [True] for a in seen)                 # the mother granted the delegation herself
    assert f.send(son, "GET", f"/fhir/Patient/{f.stranger}/$access-report").status_code == 404
