"""`medport serve --demo`: a demo deployment to try Med-Port with real SMART flows.

Seeds, once and idempotently, two hospitals (Organizations), a doctor (Practitioner), a patient at
each with a few records held by that hospital (docs/governance.md), one Consent (Asha shares her
Observations with the clinic), Asha's daughter Priya abroad acting for her (a RelatedPerson, the
delegation Consent and a related-person account: docs/auth.md "Family proxy"), their accounts, a
public SMART app and a confidential backend client per hospital, then prints how to log in, how to
obtain a token and how to see the difference. The city around them (hospitals, services, prices,
labs, pharmacies, blood banks and a week of free Slots) is demo_city.py, topped up on every start.
Passwords and the secret are random, made at first seeding
and kept in <store folder>/demo-credentials.json (mode 0600). Plain `medport serve` seeds nothing.
"""
from __future__ import annotations

import json
import os
import secrets

from . import demo_city, jsonio
from .context import ServerContext
from .governance import family_invite, proxy
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
     "address": [{"line": ["7 Fergusson College Road, Deccan Gymkhana"], "city": "Pune", "postalCode": "411004",
                  "country": "IN",
                  "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/geolocation", "extension": [
                      {"url": "latitude", "valueDecimal": 18.5236}, {"url": "longitude", "valueDecimal": 73.8478}]}]}],
     "managingOrganization": {"reference": "Organization/demo-hospital"}},
    {"resourceType": "Observation", "id": "demo-hb", "status": "final",
     "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                               "code": "laboratory"}]}],
     "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
     "subject": {"reference": "Patient/demo-patient"}, "effectiveDateTime": "2026-11-01",
     "valueQuantity": {"value": 12.9, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}},
    {"resourceType": "Organization", "id": "demo-clinic", "active": True, "name": "Med-Port Demo Clinic",
     "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
     "address": [{"city": "Chennai", "country": "IN"}]},
]
CLINIC_RESOURCES = [       # held by the clinic
    {"resourceType": "Patient", "id": "demo-patient-2", "active": True, "gender": "male", "birthDate": "1949-08-02",
     "name": [{"given": ["Ravi"], "family": "Kumar"}],
     "managingOrganization": {"reference": "Organization/demo-clinic"}},
    {"resourceType": "Observation", "id": "demo-bp", "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
     "subject": {"reference": "Patient/demo-patient-2"}, "effectiveDateTime": "2026-11-20",
     "valueQuantity": {"value": 142, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
]
# Asha shares her Observations with the clinic (an active Consent; docs/governance.md)
CONSENT = {
    "resourceType": "Consent", "id": "demo-consent", "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/demo-patient"},
    "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
    "provision": {"type": "permit",
                  "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                  "code": "IRCP"}]},
                             "reference": {"reference": "Organization/demo-clinic"}}],
                  "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]}}
# Asha's daughter, abroad, acts for her (docs/auth.md "Family proxy"): the RelatedPerson and Asha's delegation
DAUGHTER = {"resourceType": "RelatedPerson", "id": "demo-daughter", "active": True,
            "patient": {"reference": "Patient/demo-patient"},
            "relationship": [{"coding": [{"system": proxy.ROLE_CODE, "code": "DAU", "display": "daughter"}]}],
            "name": [{"given": ["Priya"], "family": "Rao"}],
            "telecom": [{"system": "email", "value": "priya.rao@example.com"}],
            "address": [{"city": "London", "country": "GB"}]}
DELEGATION = {**family_invite.delegation("demo-patient", "demo-daughter"), "id": "demo-delegation"}


def seed(ctx: ServerContext, folder: str) -> dict:
    """Seed the demo once; returns the credentials (from the file on later runs)."""
    path = os.path.join(folder, "demo-credentials.json")
    if os.path.exists(path):
        demo_city.seed(ctx)
        with open(path) as f:
            return json.load(f)
    for resources, holder in ((RESOURCES, "Organization/demo-hospital"), (CLINIC_RESOURCES, "Organization/demo-clinic"),
                              ([CONSENT, DAUGHTER, DELEGATION], None)):
        for resource in resources:
            update_i.update(demo_city.held_by(ctx, holder or ""), resource["resourceType"], resource["id"],
                            json.loads(json.dumps(resource)))
    users, clients = Users(ctx.store), Clients(ctx.store)
    patient = jsonio.loads(ctx.store.read("Patient", "demo-patient").body)
    creds = {"users": {}, "clients": {}, "uhid": identifier.value_of(patient, ctx.uhid_system)}
    for username, role, fhir_user in (("asha", "patient", "Patient/demo-patient"),
                                      ("dr.iyer", "practitioner", "Practitioner/demo-doctor"),
                                      ("admin", "admin", None),
                                      ("priya", proxy.ROLE, "RelatedPerson/demo-daughter")):
        password = secrets.token_urlsafe(12)
        users.add(username, password, role, fhir_user,
                  "Organization/demo-hospital" if role in ("practitioner", "admin") else None)
        creds["users"][username] = {"password": password, "role": role}
    app, _ = clients.add("Demo SMART app", "public", [APP_REDIRECT],
                         ["launch", "launch/patient", "openid", "fhirUser", "offline_access", "online_access",
                          "patient/*.cruds", "user/*.cruds", "medport/admin"])
    backend, secret = clients.add("Demo hospital EHR (backend)", "confidential-symmetric", [APP_REDIRECT],
                                  ["system/*.cruds", "user/*.cruds", "launch", "openid", "fhirUser"],
                                  organization="Organization/demo-hospital")
    clinic, clinic_secret = clients.add("Demo clinic EHR (backend)", "confidential-symmetric", [APP_REDIRECT],
                                        ["system/*.cruds"], organization="Organization/demo-clinic")
    # the laboratory of the demo city (demo_city.py), which receives the hospital's orders (docs/orders.md)
    lab, lab_secret = clients.add("Demo laboratory LIS (backend)", "confidential-symmetric", [APP_REDIRECT],
                                  ["system/*.cruds"], organization=demo_city.LAB)
    creds["clients"] = {"app": {"client_id": app.client_id, "redirect_uri": APP_REDIRECT},
                        "backend": {"client_id": backend.client_id, "client_secret": secret},
                        "clinic": {"client_id": clinic.client_id, "client_secret": clinic_secret},
                        "lab": {"client_id": lab.client_id, "client_secret": lab_secret}}
    demo_city.seed(ctx)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    return creds


def instructions(base: str, creds: dict, path: str) -> str:
    auth = base.rsplit("/fhir", 1)[0] + "/auth"
    backend = creds["clients"]["backend"]
    clinic = creds["clients"].get("clinic", {})
    lab = creds["clients"].get("lab", {})
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
  Each hospital sees what it holds plus what patients share with it (docs/governance.md):
    CLINIC=$(curl -s -u '{clinic.get('client_id')}:{clinic.get('client_secret')}' -d grant_type=client_credentials \\
         -d scope='system/*.rs' {auth}/token | jq -r .access_token)
    curl -s -H "Authorization: Bearer $CLINIC" '{base}/Observation?_elements=subject,code' | jq .total
      # 2: its own patient's and Asha's Observation (her Consent demo-consent shares Observations)
    curl -s -H "Authorization: Bearer $CLINIC" {base}/Patient/demo-patient | jq .issue
      # not found: the Consent shares Observations only
  The demo city's laboratory receives orders addressed to it (docs/orders.md):
    LAB=$(curl -s -u '{lab.get('client_id')}:{lab.get('client_secret')}' -d grant_type=client_credentials \\
         -d scope='system/*.cruds' {auth}/token | jq -r .access_token)
  SMART app (public client {app['client_id']}, redirect {app['redirect_uri']}, PKCE S256):
    {auth}/authorize?response_type=code&client_id={app['client_id']}&redirect_uri={app['redirect_uri']}
      &scope=launch/patient+openid+fhirUser+patient/*.rs&aud={base}&state=...&code_challenge=...
      &code_challenge_method=S256
  Discovery: {base}/.well-known/smart-configuration
  UHID of the demo patient (asha): {creds.get("uhid")}; her health card: {base}/Patient/demo-patient/$health-card
  Register a new person (UHID, account and health card): {base.rsplit("/fhir", 1)[0]}/register
"""
