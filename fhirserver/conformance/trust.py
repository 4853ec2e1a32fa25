"""Which store-held definitions the server trusts (docs/conformance.md, "Who writes them").

Definitions judge every record of the exchange, so only administrators and the CLI write them
(smart_auth/admission.check_definition_write). Stores older than that rule may hold definitions a
hospital, practitioner or patient wrote; those must not redefine anything. A stored version is trusted
when it was written

- by the server itself (the CLI: `medport ig install`, the init step's seed, `medport load`, or with
  authorization off): it carries no write-origin tag (interactions/write_origin.py), or
- by an administrator's token: it carries the server-owned tag AUTHOR_SYSTEM|administrator, stamped
  here at prepare time (a tag of that system sent by a client is always dropped first) and only on
  versions the admission rule let through, and the write-origin tag `staff` of a user's token.

Anything else (a definition written with another token before the rule) is still served as a resource,
but never resolved as a definition: the shipped one, or none, is used instead. An administrator who
saves it again makes it trusted.

A store's copy of a shipped definition (served.py, tagged SOURCE_SYSTEM|shipped) is served, not resolved:
the catalogue answers for it, so a store keeps judging by the shipped definitions of the running release."""
from __future__ import annotations

from ..interactions import server_meta, write_origin

AUTHOR_SYSTEM = "https://medport.health/fhir/CodeSystem/definition-author"
SOURCE_SYSTEM = "https://medport.health/fhir/CodeSystem/definition-source"
SHIPPED_COPY = {"system": SOURCE_SYSTEM, "code": "shipped", "display": "A copy of a definition Med-Port ships"}
ADMINISTRATOR = "administrator"
_UNTRUSTED_ORIGINS = ("patient", "staff", "system")      # write_origin codes of token writes


def stamp(resource: dict, access, is_definition: bool) -> None:
    """Drop any AUTHOR_SYSTEM or SOURCE_SYSTEM tag a token's write sent (the server alone marks its shipped
    copies); tag a definition written with an administrator's token."""
    admin = is_definition and access.grants is not None and access.claims.get("role") == "admin"
    item = {"system": AUTHOR_SYSTEM, "code": ADMINISTRATOR, "display": "Written by an administrator"} \
        if admin else None
    server_meta.replace(resource, "tag", "system", AUTHOR_SYSTEM, item)
    if access.grants is not None:
        server_meta.replace(resource, "tag", "system", SOURCE_SYSTEM, None)


def trusted(resource: dict) -> bool:
    """Whether a stored version of a definition may be resolved (see the module's docstring)."""
    if shipped_copy(resource):
        return False
    origin = write_origin.of(resource)
    if origin is None:
        return True
    author = server_meta.find(resource, "tag", "system", AUTHOR_SYSTEM)
    return origin == "staff" and author is not None and author.get("code") == ADMINISTRATOR


def criteria(base: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Search criteria finding only trusted versions among those `base` selects: one search for the
    server's own writes, one for administrators' (results still pass trusted())."""
    server = base + [("_tag:not", f"{write_origin.ORIGIN_SYSTEM}|{code}") for code in _UNTRUSTED_ORIGINS]
    admin = base + [("_tag", f"{AUTHOR_SYSTEM}|{ADMINISTRATOR}"), ("_tag", f"{write_origin.ORIGIN_SYSTEM}|staff")]
    return [server, admin]


def shipped_copy(resource: dict) -> bool:
    """A store's copy of a shipped definition (served.py)."""
    found = server_meta.find(resource, "tag", "system", SOURCE_SYSTEM)
    return found is not None and found.get("code") == SHIPPED_COPY["code"]
