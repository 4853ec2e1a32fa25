"""batch-response and transaction-response Bundles (http://hl7.org/fhir/R4/bundle.html#transaction-response)."""
from __future__ import annotations

from http import HTTPStatus

from ..errors import Issue, operation_outcome
from ..search.summary import subset
from .rendering import base_url, history_bundle, resource_dict, searchset_bundle

_REASONS = {s.value: s.phrase for s in HTTPStatus}


def response_bundle(kind: str, results, prefer_return: str) -> dict:
    entries = [_entry(r, prefer_return) for r in results]
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": entries} if entries else \
        {"resourceType": "Bundle", "type": f"{kind}-response"}


def _entry(r, prefer_return: str) -> dict:
    """One response entry: status, and for a stored version its location, etag and lastModified;
    the resource for reads (GET entries) or when Prefer: return=representation asks for it."""
    response = {"status": f"{r.status} {_REASONS.get(r.status, '')}".strip()}
    entry: dict = {}
    v = r.version
    if r.error is not None:
        response["outcome"] = r.error.outcome()
    elif r.resource is not None:
        entry["resource"] = r.resource
    elif r.search is not None:
        history = r.search_path.endswith("_history")
        entry["resource"] = (history_bundle if history else searchset_bundle)(r.search_path, r.params, r.search)
    elif v is not None and not v.deleted:
        entry["fullUrl"] = f"{base_url()}/{v.type}/{v.id}"
        if not r.is_read:
            response["location"] = f"{v.type}/{v.id}/_history/{v.version}"
        response["etag"] = f'W/"{v.version}"'
        response["lastModified"] = v.last_updated
        if (r.is_read and r.status != 304) or (not r.is_read and prefer_return == "representation"):
            entry["resource"] = resource_dict(v) if r.shape is None else subset(resource_dict(v), *r.shape)
        elif prefer_return == "OperationOutcome":
            response["outcome"] = operation_outcome([Issue(f"{v.type}/{v.id} stored", "informational",
                                                           "information")])
    entry["response"] = response
    return entry
