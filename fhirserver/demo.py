"""`medport serve --demo`: a demo deployment to try Med-Port with real SMART flows.

Seeds, once and idempotently, a hospital (Organization), a doctor (Practitioner), a patient with a
few records, their accounts, a public SMART app and a confidential backend client, then prints how
to log in and how to obtain a token. Passwords and the secret are random, made at first seeding
and kept in <store folder>/demo-credentials.json (mode 0600). Plain `medport serve` seeds nothing.
"""
from __future__ import annotations

import json
import os
import secrets

from . import jsonio
from .context import ServerContext
from .interactions import update as update_i
from .smart_auth.accounts import Users
from .smart_auth.clients import Clients
from .smart_auth.token_endpoint import BACKEND_LIFETIME_S
from .uhid import identifier

APP_REDIRECT = "http://localhost:9000/callback"
RESOURCES = [
    {"resourceType": "Organization", "id": "demo-hospital", "active": True, "name": "Med-Port Demo Hospital",
     "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
     "address": [{"city": "Pune", "country": "IN"}]},
    {"resourceType": "Practitioner", "id": "demo-doctor", "active": True,
     "name": [{"prefix": ["Dr"], "given": ["Meera"], "family": "Iyer"}]},
    {"resourceType": "Patient", "id": "demo-patient", "active": True, "gender": "female", "birthDate": "1956-03-14",
     "name": [{"given": ["Asha"], "family": "Rao"}],
     "managingOrganization": {"reference": "Organization/demo-hospital"}},
    {"resourceType": "Observation", "id": "demo-hb", "status": "final",
     "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                               "code": "laboratory"}]}],
     "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
     "subject": {"reference": "Patient/demo-patient"}, "effectiveDateTime": "2026-11-01",
     "valueQuantity": {"value": 12.9, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}},
]


def seed(ctx: ServerContext, folder: str) -> dict:
    """Seed the demo once; returns the credentials (from the file on later runs)."""
    path = os.path.join(folder, "demo-credentials.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    for resource in RESOURCES:
        update_i.update(ctx, resource["resourceType"], resource["id"], dict(resource))
    users, clients = Users(ctx.store), Clients(ctx.store)
    patient = jsonio.loads(ctx.store.read("Patient", "demo-patient").body)
    creds = {"users": {}, "clients": {}, "uhid": identifier.value_of(patient, ctx.uhid_system)}
    for username, role, fhir_user in (("asha", "patient", "Patient/demo-patient"),
                                      ("dr.iyer", "practitioner", "Practitioner/demo-doctor"),
                                      ("admin", "admin", None)):
        password = secrets.token_urlsafe(12)
        users.add(username, password, role, fhir_user, "Organization/demo-hospital" if role != "patient" else None)
        creds["users"][username] = {"password": password, "role": role}
    app, _ = clients.add("Demo SMART app", "public", [APP_REDIRECT],
                         ["launch", "launch/patient", "openid", "fhirUser", "offline_access", "online_access",
                          "patient/*.cruds", "user/*.cruds", "medport/admin"])
    backend, secret = clients.add("Demo hospital EHR (backend)", "confidential-symmetric", [APP_REDIRECT],
                                  ["system/*.cruds", "user/*.cruds", "launch", "openid", "fhirUser"],
                                  organization="Organization/demo-hospital")
    creds["clients"] = {"app": {"client_id": app.client_id, "redirect_uri": APP_REDIRECT},
                        "backend": {"client_id": backend.client_id, "client_secret": secret}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    return creds


def instructions(base: str, creds: dict, path: str) -> str:
    auth = base.rsplit("/fhir", 1)[0] + "/auth"
    backend = creds["clients"]["backend"]
    app = creds["clients"]["app"]
    users = "\n".join(f"    {name:10} {u['password']:20} ({u['role']})" for name, u in creds["users"].items())
    return f"""
Med-Port demo at {base}  (credentials kept in {path})
  Users (log in at the authorize page):
{users}
  Backend token (client_credentials; it lasts {BACKEND_LIFETIME_S // 60} minutes, then run TOKEN=... again):
    TOKEN=$(curl -s -u '{backend['client_id']}:{backend['client_secret']}' -d grant_type=client_credentials \\
         -d scope='system/*.rs' {auth}/token | jq -r .access_token)
    curl -s -H "Authorization: Bearer $TOKEN" {base}/Patient
  SMART app (public client {app['client_id']}, redirect {app['redirect_uri']}, PKCE S256):
    {auth}/authorize?response_type=code&client_id={app['client_id']}&redirect_uri={app['redirect_uri']}
      &scope=launch/patient+openid+fhirUser+patient/*.rs&aud={base}&state=...&code_challenge=...
      &code_challenge_method=S256
  Discovery: {base}/.well-known/smart-configuration
  UHID of the demo patient (asha): {creds.get("uhid")}; her health card: {base}/Patient/demo-patient/$health-card
  Register a new person (UHID, account and health card): {base.rsplit("/fhir", 1)[0]}/register
"""
