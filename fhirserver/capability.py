"""The CapabilityStatement, generated from what the server really supports
(http://hl7.org/fhir/R4/capabilitystatement.html, http.html#capabilities)."""
from __future__ import annotations

from . import __version__
from .definitions import FHIR_VERSION, resource_types, search_parameters

TYPE_INTERACTIONS = ["read", "vread", "update", "patch", "delete", "history-instance",
                     "history-type", "create", "search-type"]
SEARCH_PARAMS_SUPPORTED = ("identifier",)   # widened by the search engine


def capability_statement(settings, software_date: str) -> dict:
    resources = []
    for rtype in sorted(resource_types()):
        params = [{"name": "_id", "type": "token",
                   "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"}]
        known = search_parameters().get(rtype, {})
        for code in SEARCH_PARAMS_SUPPORTED:
            if code in known:
                params.append({"name": code, "type": known[code]["type"], "definition": known[code]["url"]})
        resources.append({
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": c} for c in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchParam": params,
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": software_date,
        "publisher": "Med-Port",
        "kind": "instance",
        "software": {"name": "Med-Port", "version": __version__},
        "implementation": {"description": "Med-Port FHIR R4 health information exchange server",
                           "url": settings.base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "history-system"}],
        }],
    }
