"""Threads over HTTP in the scheduling world (tests/scheduling/_world.py): hospital A's doctor, hospital B,
asha (with her son as proxy) and ravi. Helpers to open threads, send messages and list what a token sees."""
from __future__ import annotations

from fhirserver.smart_auth.accounts import Users
from tests.scheduling._world import PASSWORD, A, World
from tests.smart_auth._tokens import BASE, mint


class Threads:
    def __init__(self, tmp_path, backend, world=World):
        self.w = w = world(tmp_path, backend)
        # a doctor of hospital A signed in (a user token: fhirUser and organisation)
        Users(w.ctx.store).add("dr-a", PASSWORD, "practitioner", "Practitioner/prac-a", organization=A)
        self.doctor = mint(w.app, "user/*.cruds", subject="dr-a", role="practitioner",
                           fhirUser=f"{BASE}/Practitioner/prac-a", organization=A)

    def post(self, token, resource: dict, status: int = 201) -> dict:
        r = self.w.send(token, "POST", f"/fhir/{resource['resourceType']}", resource)
        assert r.status_code == status, r.get_data(as_text=True)
        return r.get_json()

    def put(self, token, resource: dict, status: int = 200):
        r = self.w.send(token, "PUT", f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
        assert r.status_code == status, r.get_data(as_text=True)
        return r.get_json()

    def open(self, token=None, patient: str | None = None, **more) -> dict:
        """A thread header about asha (or `patient`), from the doctor unless told."""
        pid = patient or self.w.asha
        header = {"resourceType": "Communication", "status": "in-progress", "subject": {"reference": f"Patient/{pid}"},
                  "topic": {"text": "Your blood pressure"}, **more}
        return self.post(token or self.doctor, header)

    def say(self, token, header: dict, text: str, status: int = 201, **more) -> dict:
        message = {"resourceType": "Communication", "status": "in-progress",
                   "partOf": [{"reference": f"Communication/{header['id']}"}],
                   "payload": [{"contentString": text}], **more}
        return self.post(token, message, status)

    def ids(self, token, query: str) -> list[str]:
        r = self.w.send(token, "GET", f"/fhir/{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return [e["resource"]["id"] for e in r.get_json().get("entry", ()) if e.get("search", {}).get("mode") != "include"]

    def everything(self, token, query: str) -> list[str]:
        """Every resource id in a search's Bundle (matches and includes)."""
        r = self.w.send(token, "GET", f"/fhir/{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return [e["resource"]["id"] for e in r.get_json().get("entry", ())]

    def status(self, token, method: str, url: str, body=None) -> int:
        return self.w.send(token, method, url, body).status_code
