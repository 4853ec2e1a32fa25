"""A scheduling world over HTTP with authorization on: hospital A publishes a Location (open Monday to
Friday 09:00-12:00), a Practitioner and a Schedule (cardiology consultations) written with its own token,
so it holds them; hospital B publishes its own; two patients (asha, ravi); asha's son acts for her
through a live delegation. Tokens are minted with the server's keys (tests/smart_auth/_tokens.py)."""
from __future__ import annotations

import json

from fhirserver.governance import proxy
from fhirserver.interactions.create import create
from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import BASE, auth, make_app, mint

A, B = "Organization/hosp-a", "Organization/hosp-b"
SNOMED = "http://snomed.info/sct"
CARDIO = {"coding": [{"system": SNOMED, "code": "394579002", "display": "Cardiology"}]}
CONSULT = {"coding": [{"system": SNOMED, "code": "11429006", "display": "Consultation"}]}
VACCINE = {"coding": [{"system": SNOMED, "code": "33879002", "display": "Vaccination"}]}
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
MONDAY = "2031-03-03"          # a Monday
PASSWORD = "correct horse battery staple"


def params(**values) -> dict:
    """A Parameters body: value[x] picked from the Python type (dict with resourceType: a resource)."""
    out = []
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, dict) and "resourceType" in v:
                out.append({"name": name, "resource": v})
            elif isinstance(v, dict):
                out.append({"name": name, "valueReference": v})
            elif isinstance(v, bool):
                out.append({"name": name, "valueBoolean": v})
            elif isinstance(v, int):
                out.append({"name": name, "valueInteger": v})
            elif name in ("start", "end") and len(v) == 10:
                out.append({"name": name, "valueDate": v})
            else:
                out.append({"name": name, "valueString": v})
    return {"resourceType": "Parameters", "parameter": out}


class World:
    def __init__(self, tmp_path, backend, **settings):
        self.app = make_app(tmp_path, backend, **settings)
        self.ctx = self.app.config["MEDPORT"]
        self.http = self.app.test_client()
        self.system = mint(self.app, "system/*.cruds", client_id="exchange")
        self.a = mint(self.app, "system/*.cruds", client_id="hosp-a-ehr", organization=A)
        self.b = mint(self.app, "system/*.cruds", client_id="hosp-b-ehr", organization=B)
        for org, name in ((A, "City Hospital"), (B, "Lake Clinic")):
            self.server({"resourceType": "Organization", "id": org.split("/")[1], "name": name})
        self.asha = self.server({"resourceType": "Patient", "name": [{"family": "Sharma", "given": ["Asha"]}]})
        self.ravi = self.server({"resourceType": "Patient", "name": [{"family": "Kumar", "given": ["Ravi"]}]})
        self.son = self.server({"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{self.asha}"},
                                "name": [{"family": "Sharma", "given": ["Arjun"]}]})
        self.server(delegation(self.asha, self.son))
        self.asha_token = self.patient_token(self.asha)
        self.ravi_token = self.patient_token(self.ravi)
        users = Users(self.ctx.store)
        users.add(f"user-{self.asha}", PASSWORD, "patient", f"Patient/{self.asha}")
        users.add(f"user-{self.ravi}", PASSWORD, "patient", f"Patient/{self.ravi}")
        users.add("arjun", PASSWORD, proxy.ROLE, f"RelatedPerson/{self.son}")
        self.son_token = mint(self.app, "patient/*.cruds", subject="arjun", role=proxy.ROLE,
                              fhirUser=f"{BASE}/RelatedPerson/{self.son}", patient=self.asha)
        self.schedule = self.publish(self.a, "a", 12.97, 77.59)
        self.b_schedule = self.publish(self.b, "b", 19.07, 72.88)

    def patient_token(self, pid: str) -> str:
        return mint(self.app, "patient/*.cruds", subject=f"user-{pid}", role="patient",
                    fhirUser=f"{BASE}/Patient/{pid}", patient=pid)

    def server(self, resource: dict) -> str:
        if "id" in resource:
            r = self.send(self.system, "PUT", f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
            assert r.status_code in (200, 201), r.get_data(as_text=True)
            return resource["id"]
        return create(self.ctx, resource["resourceType"], resource).version.id

    def publish(self, token: str, tag: str, lat: float, lon: float) -> str:
        """A Location, a Practitioner and a Schedule written by the hospital (it holds them)."""
        loc = {"resourceType": "Location", "id": f"loc-{tag}", "name": f"OPD {tag}",
               "position": {"latitude": lat, "longitude": lon},
               "hoursOfOperation": [{"daysOfWeek": WEEKDAYS, "openingTime": "09:00:00", "closingTime": "12:00:00"}]}
        prac = {"resourceType": "Practitioner", "id": f"prac-{tag}", "name": [{"family": f"Doctor {tag}"}]}
        sched = {"resourceType": "Schedule", "id": f"sched-{tag}", "active": True, "serviceType": [CONSULT],
                 "specialty": [CARDIO],
                 "actor": [{"reference": f"Location/loc-{tag}"}, {"reference": f"Practitioner/prac-{tag}"}]}
        for resource in (loc, prac, sched):
            r = self.send(token, "PUT", f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
            assert r.status_code == 201, r.get_data(as_text=True)
        return sched["id"]

    def send(self, token: str | None, method: str, url: str, body=None):
        headers = {"Content-Type": FHIR_JSON, **(auth(token) if token else {})}
        return self.http.open(url, method=method, data=None if body is None else json.dumps(body), headers=headers)

    def op(self, token, url, **values):
        return self.send(token, "POST", f"/fhir/{url}", params(**values))

    def generate(self, token=None, schedule=None, start=MONDAY, end=MONDAY, minutes=30, **more):
        return self.op(token or self.a, f"Schedule/{schedule or self.schedule}/$generate-slots", start=start, end=end,
                       minutes=minutes, **more)

    def find(self, token=None, query="") -> list[dict]:
        r = self.send(token or self.a, "GET", f"/fhir/Appointment/$find?start={MONDAY}&end=2031-03-08{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return [e["resource"] for e in r.get_json().get("entry", ())]

    def slot(self, sid: str) -> dict:
        return self.send(self.system, "GET", f"/fhir/Slot/{sid}").get_json()

    def slots(self, schedule=None) -> list[dict]:
        r = self.send(self.system, "GET", f"/fhir/Slot?schedule=Schedule/{schedule or self.schedule}&_sort=start&_count=200")
        return [e["resource"] for e in r.get_json().get("entry", ())]

    def book(self, token, slot: str, patient: str, op: str = "book", **more):
        return self.op(token, f"Appointment/${op}", slot={"reference": f"Slot/{slot}"},
                       patient={"reference": f"Patient/{patient}"}, **more)

    def appointment(self, response) -> dict:
        assert response.status_code == 200, response.get_data(as_text=True)
        bundle = response.get_json()
        assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 1
        return bundle["entry"][0]["resource"]

    def stored_appointments(self) -> list[dict]:
        r = self.send(self.system, "GET", "/fhir/Appointment?_count=200")
        return [e["resource"] for e in r.get_json().get("entry", ())]


def delegation(patient: str, related: str) -> dict:
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient}"},
            "provision": {"type": "permit", "purpose": [{"system": proxy.ACT_REASON, "code": proxy.FAMRQT}],
                          "actor": [{"role": {"coding": [{"system": proxy.ROLE_CODE, "code": proxy.DELEGATEE}]},
                                     "reference": {"reference": f"RelatedPerson/{related}"}}]}}


def issue(response) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0].get("diagnostics", "")
