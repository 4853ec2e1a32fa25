"""Doctor-patient messages: threads of Communications and CommunicationRequests (docs/messages.md).

The rules are judged on every write path: interactions/common.store_new_version calls check() for each
version stored (create, update, patch, conditional, in Bundles) and store_delete calls check_delete();
other types pay one dict lookup. Who reads a message is decided by the access policy, not here: a
patient reads their own compartment (a message names no other patient: refs.only_subject),
an organisation what is addressed to it (governance/addressed.py), and no Consent or emergency access
shares messages (governance/policy.py HELD_ONLY).
"""
from __future__ import annotations

from .. import jsonio
from ..repository import GuardedTransaction
from ..search.extract import extract
from . import communication, request, writer

RULES = {"Communication": communication.check, "CommunicationRequest": request.check}


def check(tx, p, resource: dict, replaced: bytes | None) -> None:
    """Judge a Communication or CommunicationRequest version before it is stored (p: the Prepared
    write, tx: the raw store transaction, replaced: the stored version's JSON). Elements the server
    fills in (sender, requester, subject, sent, recipients) are indexed again."""
    rule = RULES.get(p.type)
    who = writer.of(p.access) if rule is not None else None
    if who is None:
        return
    old = jsonio.loads_stored(replaced) if replaced is not None else None
    gtx = GuardedTransaction(tx, p.access, p.base)
    filled = rule(gtx, who, resource, old)
    if filled:
        p.rows = extract(resource, p.base)


def check_delete(tx, access, base: str, rtype: str, body: bytes | None) -> None:
    """Judge the delete of a Communication or CommunicationRequest (body: the version removed)."""
    rule = RULES.get(rtype)
    who = writer.of(access) if rule is not None else None
    if who is None or body is None:
        return
    gtx = GuardedTransaction(tx, access, base)
    rule(gtx, who, None, jsonio.loads_stored(body))
