"""AuditEvent records of sensitive acts (auditevent.html), written by the server itself, in the
request's one unit of work: inside a transaction Bundle they commit (or roll back) with it.

Each names who acted (the token's fhirUser, else its client, else the operator of the server),
what was done, to which resource, and when. They are ordinary resources: a regulator with
AuditEvent read rights searches them like any other (AuditEvent?entity=Patient/123).
"""
from __future__ import annotations

import datetime

from .interactions.common import new_id, prepare, store_new_version
from .smart_auth.access import UNRESTRICTED

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"


def record(ctx, *, type_code: tuple[str, str], subtype: tuple[str, str], action: str, what: str,
           description: str) -> None:
    """Store one AuditEvent; type_code is a DICOM (code, display), subtype a Med-Port (code, display)."""
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": type_code[0], "display": type_code[1]},
        "subtype": [{"system": f"{ctx.base}/CodeSystem/medport-audit", "code": subtype[0], "display": subtype[1]}],
        "action": action,
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "outcome": "0",
        "agent": [_agent(ctx)],
        "source": {"observer": {"display": "Med-Port"}, "site": ctx.base},
        "entity": [{"what": {"reference": what}, "type": _entity_type(what), "description": description}],
    }
    server = ctx.acting_as(UNRESTRICTED)
    prepared = prepare(server, "AuditEvent", event)
    with ctx.store.unit() as tx:        # joins the request's open unit (a Bundle entry), else its own
        store_new_version(tx, prepared, new_id(), "POST", None)


def _entity_type(what: str) -> dict:
    if what.startswith("Patient/"):
        return {"system": ENTITY_TYPE, "code": "1", "display": "Person"}
    return {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}


def _agent(ctx) -> dict:
    claims = ctx.access.claims
    agent: dict = {"requestor": True}
    fhir_user = claims.get("fhirUser")
    if fhir_user:
        agent["who"] = {"reference": fhir_user.removeprefix(ctx.base + "/")}
    elif claims.get("client_id"):
        agent["who"] = {"identifier": {"system": f"{ctx.base}/sid/client", "value": claims["client_id"]}}
    else:
        agent["who"] = {"display": "the server's operator (no access token)"}
    if claims.get("sub"):
        agent["altId"] = str(claims["sub"])
    if claims.get("client_id"):
        agent["name"] = f"client {claims['client_id']}"
    return agent
