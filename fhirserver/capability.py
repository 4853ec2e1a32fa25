"""The CapabilityStatement, generated from what the server really supports
(http://hl7.org/fhir/R4/capabilitystatement.html, http.html#capabilities)."""
from __future__ import annotations

import functools

from . import __version__
from .definitions import FHIR_VERSION, resource_types
from .interactions.common import APPEND_ONLY
from .search.registry import ENGINE_PARAMS, all_params
from .subscriptions import spec as subscription_spec
from .subscriptions import topics

CHANGES = ("update", "patch", "delete")
TYPE_INTERACTIONS = ["read", "vread", "update", "patch", "delete", "history-instance",
                     "history-type", "create", "search-type"]
MODIFIERS = {
    "string": ":exact :contains :missing",
    "token": ":not :text :of-type (identifier) :in :not-in :below :above (the server's terminology) :missing",
    "reference": ":[type] :identifier :missing, chaining",
    "uri": ":below :above :missing",
    "date": "prefixes eq ne gt lt ge le sa eb ap; :missing",
    "number": "prefixes eq ne gt lt ge le sa eb ap; :missing",
    "quantity": "prefixes eq ne gt lt ge le sa eb ap; :missing; UCUM quantities in canonical units",
    "composite": "$-separated components; :missing",
    "special": "near=latitude|longitude|distance|units; _sort=near (nearest first); each entry's "
               "location-distance in the unit asked",
}


@functools.lru_cache(maxsize=None)
def _rev_includes() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rtype, params in all_params().items():
        for p in params.values():
            if p.kind == "reference":
                for target in p.targets or ():
                    out.setdefault(target, []).append(f"{rtype}:{p.code}")
    return {k: sorted(set(v)) for k, v in out.items()}


BULK = "http://hl7.org/fhir/uv/bulkdata"
EXPORT = {"name": "export", "definition": f"{BULK}/OperationDefinition/export"}


def _operations(rtype: str) -> list[dict]:
    from .operations import registry
    bulk = {"Patient": [{"name": "export", "definition": f"{BULK}/OperationDefinition/patient-export"}],
            "Group": [{"name": "export", "definition": f"{BULK}/OperationDefinition/group-export"}]}
    return [{"name": op.name, "definition": op.definition_for(rtype)["url"]} for op in registry().values()
            if "Resource" in op.types or rtype in op.types] + bulk.get(rtype, [])


def _system_operations() -> list[dict]:
    """Operations offered at system level ($data-quality), from their definitions."""
    from .operations import registry
    return [{"name": op.name, "definition": op.definition["url"]} for op in registry().values()
            if op.definition.get("system")]


def _search_params(rtype: str) -> list[dict]:
    params = [{"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"}]
    for code, p in sorted(all_params().get(rtype, {}).items()):
        if code in ENGINE_PARAMS:
            continue
        params.append({"name": code, "type": p.kind, "definition": p.url, "documentation": MODIFIERS[p.kind]})
    if rtype == "Location":     # evaluated with near, not indexed (search/opening_hours.py)
        params += [{"name": code, "type": "special",
                    "definition": f"https://medport.health/fhir/SearchParameter/Location-{code}",
                    "documentation": "opening hours (with near): open-now=true, open-at=dateTime"}
                   for code in ("open-now", "open-at")]
    return params


def _system_params(per_type: list[list[dict]]) -> list[dict]:
    """A search over all types takes the parameters every type has (search.html#all: _id, _lastUpdated...);
    `per_type`: each type's searchParam list, as the statement lists them."""
    common = set.intersection(*({p["name"] for p in params} for params in per_type))
    return [dict(p) for p in per_type[0] if p["name"] in common]


def software(settings) -> dict:
    """software and implementation, as this server's CapabilityStatement and TerminologyCapabilities name them."""
    return {"software": {"name": "Med-Port", "version": __version__},
            "implementation": {"description": "Med-Port FHIR R4 health information exchange server",
                               "url": settings.base_url}}


def capability_statement(settings, software_date: str) -> dict:
    resources = []
    profiles = supported_profiles(settings.required_profiles)
    for rtype in sorted(resource_types()):
        append_only = rtype in APPEND_ONLY          # the audit trail: created by the server, never changed
        resources.append({
            # the backport IG's topic discovery for R4 servers (docs/subscriptions.md)
            **({"extension": topics.capability_extensions()} if rtype == subscription_spec.TYPE else {}),
            **({"supportedProfile": profiles[rtype]} if profiles.get(rtype) else {}),
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": c} for c in TYPE_INTERACTIONS if not (append_only and c in CHANGES)],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": not append_only,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": not append_only,
            "conditionalDelete": "not-supported" if append_only else "single",
            "searchInclude": ["*"] + sorted(f"{rtype}:{c}" for c, p in all_params().get(rtype, {}).items()
                                            if p.kind == "reference"),
            "searchRevInclude": _rev_includes().get(rtype, []),
            "searchParam": _search_params(rtype),
            "operation": _operations(rtype),
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": software_date,
        "publisher": "Med-Port",
        "kind": "instance",
        "instantiates": [f"{BULK}/CapabilityStatement/bulk-data"],      # Bulk Data 3.0 export (docs/bulk-export.md)
        **software(settings),
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],   # JSON Patch, FHIRPath Patch
        "rest": [{
            "mode": "server",
            **({"security": _security(settings.base_url)} if settings.auth != "off" else {}),
            "resource": resources,
            # system interactions (capabilitystatement.html: rest.interaction; http.html#transaction)
            "interaction": [{"code": c} for c in ("transaction", "batch", "history-system", "search-system")],
            "operation": [EXPORT] + _system_operations(),
            "searchParam": [{"name": "_type", "type": "token",
                             "documentation": "System search: the resource types to search"}]
                           + _system_params([r["searchParam"] for r in resources]),
        }],
    }


def supported_profiles(required: str) -> dict[str, list[str]]:
    """Per type, the profiles the server validates against without being told about them: those it ships
    (Med-Port's own, US Core: conformance/catalogue.py) and those it requires (MEDPORT_REQUIRED_PROFILES).
    Profiles installed later (`medport ig install`) are found at GET [base]/StructureDefinition."""
    from .conformance import catalogue
    from .validation.write_policy import required_profiles
    out: dict[str, list[str]] = {subscription_spec.TYPE: [subscription_spec.PROFILE]}
    for sd in catalogue.all_of("StructureDefinition"):
        if sd.get("derivation") == "constraint" and sd.get("kind") == "resource" and isinstance(sd.get("url"), str):
            out.setdefault(sd.get("type"), []).append(sd["url"])
    for rtype, canonicals in required_profiles(required).items():
        out.setdefault(rtype, []).extend(canonicals)
    return {rtype: sorted(set(urls)) for rtype, urls in out.items()}


def _security(base_url: str) -> dict:
    """SMART App Launch 2.2 "Conformance": the SMART-on-FHIR service and the oauth-uris extension."""
    from .smart_auth.discovery import oauth_uris_extension
    return {
        "cors": True,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR profile"}],
        "extension": [oauth_uris_extension(base_url)],
        "description": f"SMART App Launch 2.2 and Backend Services; discovery at {base_url}/.well-known/"
                       "smart-configuration",
    }
