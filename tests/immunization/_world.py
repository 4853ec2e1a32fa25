"""The scheduling world (tests/scheduling/_world.py: hospitals A and B, patients, tokens) plus a child
registered by hospital A (A holds her Patient record) with a birth date, her own patient token, and
her mother acting for her through a live delegation."""
from __future__ import annotations

from fhirserver.governance import proxy
from fhirserver.smart_auth.accounts import Users
from tests.scheduling._world import PASSWORD, World, delegation
from tests.smart_auth._tokens import BASE, mint

CVX = "http://hl7.org/fhir/sid/cvx"
BIRTH = "2031-01-06"
SIX_WEEKS = "2031-02-17"


class VaccinationWorld(World):
    def __init__(self, tmp_path, backend, **settings):
        super().__init__(tmp_path, backend, **settings)
        r = self.send(self.a, "POST", "/fhir/Patient", {"resourceType": "Patient", "birthDate": BIRTH,
                                                        "name": [{"family": "Rao", "given": ["Meera"]}]})
        assert r.status_code == 201, r.get_data(as_text=True)
        self.child = r.get_json()["id"]
        self.mother = self.server({"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{self.child}"},
                                   "name": [{"family": "Rao", "given": ["Priya"]}]})
        self.server(delegation(self.child, self.mother))
        users = Users(self.ctx.store)
        users.add(f"user-{self.child}", PASSWORD, "patient", f"Patient/{self.child}")
        users.add("priya", PASSWORD, proxy.ROLE, f"RelatedPerson/{self.mother}")
        self.child_token = self.patient_token(self.child)
        self.mother_token = mint(self.app, "patient/*.cruds", subject="priya", role=proxy.ROLE,
                                 fhirUser=f"{BASE}/RelatedPerson/{self.mother}", patient=self.child)

    def give(self, token, cvx: str, when: str, patient: str | None = None, **fields) -> str:
        """Record a completed Immunization (CVX code) given on that day; its id."""
        body = {"resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
                "patient": {"reference": f"Patient/{patient or self.child}"}, "occurrenceDateTime": when, **fields}
        r = self.send(token, "POST", "/fhir/Immunization", body)
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()["id"]

    def status(self, token, patient: str | None = None, method: str = "GET", **values):
        """Patient/[id]/$immunization-status: GET with a query string, or POST with a Parameters body."""
        url = f"/fhir/Patient/{patient or self.child}/$immunization-status"
        if method == "GET":
            query = "&".join(f"{k}={v}" for k, v in values.items())
            return self.send(token, "GET", url + (f"?{query}" if query else ""))
        return self.op(token, url[len("/fhir/"):], **values)

    def forecast(self, token, patient: str | None = None, **values) -> dict:
        r = self.status(token, patient, **values)
        assert r.status_code == 200, r.get_data(as_text=True)
        body = r.get_json()
        assert body["resourceType"] == "ImmunizationRecommendation", body
        return body


def by_series(recommendation: dict) -> dict[str, dict]:
    """{series title: recommendation entry}."""
    return {r["series"]: r for r in recommendation["recommendation"]}


def status_of(recommendation: dict, series: str) -> tuple[str, str | None]:
    """(forecastStatus code, the next dose's description) of one series."""
    r = by_series(recommendation)[series]
    return r["forecastStatus"]["coding"][0]["code"], r.get("description")


def criteria(entry: dict) -> dict[str, str]:
    """{LOINC code: date} of a recommendation's dateCriterion."""
    return {c["code"]["coding"][0]["code"]: c["value"] for c in entry.get("dateCriterion", ())}
