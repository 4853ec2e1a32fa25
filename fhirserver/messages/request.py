"""CommunicationRequest: "please send your latest report" (docs/messages.md "Requests").

A request names who asks (requester), who is to send (sender: the patient) and who is to receive
(recipient: the doctor or the organisation), communicationrequest.html. Rules when a token writes one:

- its requester is the writer (filled in from the token when missing); the only Patient it names is its
  subject;
- only its requester changes it (revokes, completes): the organisation that holds it, or the requester;
- the answer is a Communication basedOn the request, sent by whom the request asks to send (the patient,
  or a proxy acting for them) while it is active: its subject is the request's, and when it names no
  recipient (and is not a message of a thread, which goes to the thread's participants) it goes to the
  request's recipients, its requester and the organisation holding it.
  Storing the answer completes the request (the server writes it, in the same transaction).
"""
from __future__ import annotations

from .. import jsonio
from ..errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from ..governance import custodian
from . import refs, thread

TYPE = "CommunicationRequest"
PEOPLE = ("subject", "sender", "recipient", "requester")


def check(gtx, writer, new: dict | None, old: dict | None) -> bool:
    """Judge new over old (None: a create; new None: a delete). Returns whether new was filled in."""
    if old is not None and not _requester(old, writer):
        raise Forbidden("Only the request's requester changes or deletes it (the patient answers it with a "
                        "Communication basedOn it)")
    if new is None:
        return False
    filled = False
    requester = refs.one(new.get("requester"))
    if old is None and requester is None:
        if writer.default is None:
            raise Forbidden("This token names no one (no fhirUser, organisation or patient): it cannot request")
        new["requester"], filled = {"reference": writer.default}, True
    elif old is None and not writer.is_any([requester]):
        raise Forbidden(f"The requester {requester} is not you: a request's requester is its writer")
    refs.only_subject(new, PEOPLE)
    return filled


def _requester(request: dict, writer) -> bool:
    held = custodian.of(request)
    return (held is not None and held == writer.organization) or writer.is_any(refs.of(request.get("requester")))


def answer(gtx, writer, communication: dict) -> bool:
    """Check an answer (a Communication basedOn requests), fill in its subject and recipients, and
    complete the requests it answers. Returns whether the answer was filled in."""
    filled = False
    for ref in dict.fromkeys(r for r in refs.of(communication.get("basedOn")) if r.startswith(TYPE + "/")):
        version, request = _read(gtx, ref)
        asked = refs.of(request.get("sender"))
        if asked and not writer.is_party(asked):
            raise Forbidden(f"{ref} asks {', '.join(asked)} to send, not you")
        if request.get("status") != "active":
            raise Conflict(f"{ref} is {request.get('status')}: only an active request is answered")
        subject, theirs = refs.one(communication.get("subject")), refs.one(request.get("subject"))
        if subject is None and theirs is not None:
            communication["subject"], filled = {"reference": theirs}, True
        elif theirs is not None and subject != theirs:
            raise Unprocessable(f"An answer's subject is its request's: {ref} is about {theirs}, not {subject}")
        if not communication.get("recipient") and thread.thread_of(communication) is None:
            to = [*refs.of(request.get("recipient")), *refs.of(request.get("requester")), custodian.of(request)]
            communication["recipient"] = [{"reference": r} for r in dict.fromkeys(t for t in to if t)]
            filled = True
        _complete(gtx, version, request)
    return filled


def _read(gtx, ref: str):
    try:
        found = gtx.read(TYPE, ref.split("/", 1)[1], "read")
        if found is None or found.deleted:
            raise NotFound(ref)
    except (NotFound, Gone):
        raise Forbidden(f"basedOn names {ref}, which is not a request you can read (or does not exist)") from None
    return found, jsonio.loads_stored(found.body)


def _complete(gtx, version, request: dict) -> None:
    """The server completes the answered request (its holder keeps it). interactions.common, the write
    path, calls this package, so it is imported here, when used."""
    from ..interactions import common
    common.store_server_written(gtx.raw, gtx.base, {**request, "status": "completed"}, current=version)
