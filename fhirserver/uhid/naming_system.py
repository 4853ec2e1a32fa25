"""The NamingSystem resource that documents the UHID (namingsystem.html), served as NamingSystem/uhid.

Written at start-up when missing or out of date (a changed base URL or uhid_system), so that
`GET [base]/NamingSystem?value=[system]` tells any client what the identifier is."""
from __future__ import annotations

from .. import jsonio
from ..errors import PreconditionFailed, StoreUnavailable
from ..interactions.common import prepare, store_new_version
from . import identifier

ID = "uhid"
DEFINED = "2026-11-30"


def resource(system: str) -> dict:
    return {
        "resourceType": "NamingSystem", "id": ID, "name": "MedPortUHID", "status": "active", "kind": "identifier",
        "date": DEFINED, "publisher": "Med-Port", "responsible": identifier.ASSIGNER["display"],
        "type": identifier.TYPE,
        "description": "Unique Health ID: one number per person, valid at every Med-Port hospital. 14 digits "
                       "written NN-NNNN-NNNN-NNNN; the last is a Verhoeff check digit over the first 13, so a "
                       "single mistyped digit or two swapped neighbours are always detected. Numbers are random "
                       "(not derived from personal data), never reused, and never change.",
        "usage": "Patient.identifier with this system, identifier.type v2-0203 NI. Search accepts the value "
                 "with or without dashes or spaces; it is stored as NN-NNNN-NNNN-NNNN.",
        "uniqueId": [{"type": "uri", "value": system, "preferred": True}],
    }


def ensure(ctx) -> None:
    """Store NamingSystem/uhid unless the current version already says the same. Several workers
    starting at once: the first writes it, the others find it written (or lose a write conflict)."""
    wanted = resource(ctx.uhid_system)
    current = ctx.store.read("NamingSystem", ID)
    if current is not None and not current.deleted and _same(current, wanted):
        return          # read first: a start-up with nothing to write takes no write lock
    try:
        prepared = prepare(ctx, "NamingSystem", dict(wanted))
        with ctx.store.transaction() as tx:
            current = tx.read("NamingSystem", ID)
            if current is not None and not current.deleted and _same(current, wanted):
                return
            store_new_version(tx, prepared, ID, "PUT", current)
    except (PreconditionFailed, StoreUnavailable):
        pass        # another worker wrote it at the same moment


def _same(current, wanted: dict) -> bool:
    return {k: v for k, v in jsonio.loads(current.body).items() if k != "meta"} == wanted
