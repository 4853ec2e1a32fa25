"""The public directory: who offers which care where, and at what price, readable without a token
(docs/directory.md; Da Vinci Plan-Net: a directory must not require login nor ask who reads it).

A request WITHOUT an Authorization header that reads or searches one of PUBLIC_TYPES acts with
PUBLIC_ACCESS: read and search on those types only. Everything it touches goes through the same
guard as any token's query, so an _include, _revinclude, chain or _has reaching any other type finds
nothing there. Every other path without a token stays a 401. A request that carries a token is judged
by its token, as always. Setting: MEDPORT_PUBLIC_DIRECTORY (on by default).

Definitions (DEFINITION_TYPES: StructureDefinitions, ValueSets, CodeSystems ... conformance.html) are
public standards: read and searched without a token the same way whatever that setting says
(DEFINITIONS_ACCESS alone when the directory is off). Their operations ($expand, $validate ...) still
need a token.
"""
from __future__ import annotations

from ..conformance import CONFORMANCE_TYPES
from .access import Access
from .scopes import Grants

PUBLIC_TYPES = ("ChargeItemDefinition", "HealthcareService", "Location", "Organization", "Practitioner",
                "PractitionerRole", "Schedule", "Slot")
DEFINITION_TYPES = tuple(sorted(CONFORMANCE_TYPES))
PUBLIC_ACCESS = Access(Grants.parse(" ".join(f"user/{t}.rs" for t in PUBLIC_TYPES + DEFINITION_TYPES)),
                       directory=True)      # a directory record about a patient is not public (policy.directory_node)
DEFINITIONS_ACCESS = Access(Grants.parse(" ".join(f"user/{t}.rs" for t in DEFINITION_TYPES)))


def access(settings) -> Access:
    """The rights of a tokenless read that applies()."""
    return PUBLIC_ACCESS if settings.public_directory == "on" else DEFINITIONS_ACCESS


def applies(settings, method: str, path: str, has_authorization: bool) -> bool:
    """Whether this request is a tokenless read or search of the public directory."""
    if has_authorization:
        return False
    parts = path.removeprefix("/fhir").strip("/").split("/")
    if parts[0] not in DEFINITION_TYPES and (parts[0] not in PUBLIC_TYPES or settings.public_directory != "on"):
        return False
    rest = parts[1:]
    if method in ("GET", "HEAD"):
        return (not rest                                                       # search
                or (len(rest) == 1 and not rest[0].startswith(("$", "_")))     # read
                or (len(rest) == 3 and rest[1] == "_history" and not rest[0].startswith(("$", "_"))))  # vread
    return method == "POST" and rest == ["_search"]


def reader(ctx):
    """The repository that reads the directory for an operation of this request: the caller's own if
    its scopes read the directory types unconfined, else the public directory's (a patient's or a
    proxy's token sees the same directory as anyone; patient scopes have no place for it)."""
    access = ctx.access
    if access.grants is None or all(access.grants.decide(i, "HealthcareService").allowed and
                                    not access.grants.decide(i, "HealthcareService").patient_compartment
                                    for i in ("read", "search-type")):
        return ctx.repo
    return ctx.acting_as(PUBLIC_ACCESS).repo
