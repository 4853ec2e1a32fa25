"""Who wrote each version: a server-owned tag in meta.tag (resource.html#Meta, "tag").

Every write made with an access token carries one tag of ORIGIN_SYSTEM saying what kind of party
wrote that version; a tag of this system sent by the client is always dropped first, so no client
can claim another origin or remove its own. Versions written by the server itself (the CLI,
`medport load`, self-registration, authorization off) carry no tag.

    patient  a patient user (or an app acting for one), or a family proxy acting for the patient
             (role related-person, governance/proxy.py): self-reported data, never attested
    staff    a practitioner or administrator user of a hospital
    system   a backend service (a hospital system's client, no user)

What the server attests (health cards) is what a hospital or the server wrote: `attested()`.
A proxy's writes are the patient's side, so they carry `patient` too (a separate code would let a
proxy pass the checks that refuse the patient's side, e.g. $registration-code, and enter health
cards); which person wrote them is in the access log (`user`, `patient` of the token).
"""
from __future__ import annotations

from . import server_meta

ORIGIN_SYSTEM = "https://medport.health/fhir/CodeSystem/write-origin"
DISPLAY = {"patient": "Written by the patient", "staff": "Written by hospital staff",
           "system": "Written by a hospital system"}


def writer(access) -> str | None:
    """The origin code of writes made with these rights (None: the server itself)."""
    if access.grants is None:
        return None
    claims = access.claims
    user = str(claims.get("fhirUser") or "").rsplit("/", 2)[-2:]
    if claims.get("role") in ("patient", "related-person") or (
            len(user) == 2 and user[0] in ("Patient", "RelatedPerson")):
        return "patient"
    if claims.get("role") or claims.get("fhirUser"):
        return "staff"
    return "system"


def stamp(resource: dict, code: str | None) -> None:
    """Replace any tag of ORIGIN_SYSTEM by the writer's own (none for the server)."""
    item = {"system": ORIGIN_SYSTEM, "code": code, "display": DISPLAY[code]} if code is not None else None
    server_meta.replace(resource, "tag", "system", ORIGIN_SYSTEM, item)


def of(resource: dict) -> str | None:
    """The origin code of a stored version (None: written by the server)."""
    found = server_meta.find(resource, "tag", "system", ORIGIN_SYSTEM)
    return found.get("code") if found else None


def attested(resource: dict) -> bool:
    """Written by a hospital (staff or system) or the server, not self-reported by a patient."""
    return of(resource) != "patient"
