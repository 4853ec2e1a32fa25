"""The custodian of a record: the Organization of the client or practitioner that wrote its current
version, taken from the access token (claim `organization`), never from the body.

It lives in the resource as a server-owned meta extension (resource.html#Meta; an extension the
client sent is always dropped first), so it travels with every version, `medport reindex`
recomputes its index rows, and `[type]?_custodian=Organization/[id]` finds what a hospital holds
(profiles/medport-search-parameters.json). Writes made without a token (the CLI, `medport load`,
authorization off) get the deployment's default custodian (MEDPORT_DEFAULT_CUSTODIAN), if any;
a patient's own writes have none.
"""
from __future__ import annotations

from ..interactions import server_meta

CUSTODIAN_URL = "https://medport.health/fhir/StructureDefinition/custodian"


def of_writer(access, default: str | None) -> str | None:
    """The custodian of what these rights write: the token's Organization (none for a patient), or the
    deployment's default for the server's own writes."""
    if access.grants is None:
        return default or None
    return access.organization


def stamp(resource: dict, organization: str | None) -> None:
    """Replace any custodian extension in meta by the writer's own (or none)."""
    item = {"url": CUSTODIAN_URL, "valueReference": {"reference": organization}} if organization else None
    server_meta.replace(resource, "extension", "url", CUSTODIAN_URL, item)


def of(resource: dict) -> str | None:
    """'Organization/<id>' that holds this version, or None."""
    found = server_meta.find(resource, "extension", "url", CUSTODIAN_URL)
    return (found.get("valueReference") or {}).get("reference") if found else None
