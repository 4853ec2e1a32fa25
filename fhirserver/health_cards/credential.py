"""The content of a card: a minimal FHIR Bundle and the JWT claims that carry it.

Spec: https://spec.smarthealth.cards/#health-cards-are-encoded-as-compact-serialization-json-web-signatures-jws
(the claims) and #health-cards-are-compact (the minimization rules for cards printed as QR codes).
"""
from __future__ import annotations

import copy

HEALTH_CARD = "https://smarthealth.cards#health-card"
FHIR_VERSION = "4.0.1"


def minimal_bundle(patient: dict, others: list[dict]) -> dict:
    """A Bundle of type "collection": the patient as "resource:0", the others as "resource:1", ...

    Each resource loses id, meta (but meta.security), text, CodeableConcept.text (when it has
    codings) and Coding.display. A reference to a bundled resource becomes "resource:<n>"; a
    reference to anything else loses its reference string (it would leak a server id and cannot
    be resolved inside the card) and keeps its display or identifier, if any.
    """
    resources = [patient, *others]
    index = {f"{r['resourceType']}/{r['id']}": n for n, r in enumerate(resources) if r.get("id")}
    entries = []
    for n, resource in enumerate(resources):
        minimal = {k: copy.deepcopy(v) for k, v in resource.items() if k not in ("id", "meta", "text")}
        security = (resource.get("meta") or {}).get("security")
        if security:
            minimal["meta"] = {"security": copy.deepcopy(security)}
        _minimize(minimal, index)
        entries.append({"fullUrl": f"resource:{n}", "resource": minimal})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def payload(issuer: str, bundle: dict, nbf: int,
            types: tuple[str, ...] = (HEALTH_CARD,)) -> dict:
    """The JWT claims of a card. The health-card type is always first; the issuer URL loses any
    trailing "/" (the spec forbids it: the JWKS is at iss + "/.well-known/jwks.json")."""
    return {
        "iss": issuer.rstrip("/"),
        "nbf": nbf,
        "vc": {
            "type": [HEALTH_CARD, *(t for t in types if t != HEALTH_CARD)],
            "credentialSubject": {"fhirVersion": FHIR_VERSION, "fhirBundle": bundle},
        },
    }


def _minimize(node, index: dict[str, int]):
    """Apply the element-level rules to every element below a resource, in place; elements left
    empty (a reference to nothing bundled and nothing else) are removed."""
    if isinstance(node, list):
        node[:] = [item for item in node if not _empty(_minimize(item, index))]
    elif isinstance(node, dict):
        codings = node.get("coding")
        if isinstance(codings, list) and codings:
            node.pop("text", None)                       # CodeableConcept.text
            for coding in codings:
                if isinstance(coding, dict):
                    coding.pop("display", None)          # Coding.display
        elif "code" in node and "system" in node and "value" not in node:
            node.pop("display", None)                    # a lone Coding (a Quantity has a value)
        if isinstance(node.get("reference"), str):
            _rewrite_reference(node, index)
        for key in [k for k in node if k != "contained"]:
            if _empty(_minimize(node[key], index)):
                del node[key]
    return node


def _empty(node) -> bool:
    return isinstance(node, (dict, list)) and not node


def _rewrite_reference(reference: dict, index: dict[str, int]) -> None:
    ref = reference["reference"]
    if ref.startswith("#"):                              # a contained resource: stays as it is
        return
    target = _target(ref)
    if target in index:
        reference["reference"] = f"resource:{index[target]}"
    else:
        del reference["reference"]


def _target(ref: str) -> str:
    """"Type/id" of a relative or absolute reference (a version suffix ignored)."""
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:])
