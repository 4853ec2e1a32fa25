"""The thread model (Medplum's, on R4 Communication; docs/messages.md "Model"):

    header    a Communication without payload and without partOf: the thread. status in-progress is
              open, completed is closed; its participants are its subject (the patient), sender,
              recipients and the organisation that holds it (its custodian)
    message   a Communication whose partOf names the header; payload, sender, sent
    single    a Communication with payload and no thread (an answer to a CommunicationRequest)
"""
from __future__ import annotations

from .. import jsonio
from ..errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from ..governance import custodian
from . import refs

OPEN, CLOSED, RETRACTED = "in-progress", "completed", "entered-in-error"


def thread_of(c: dict) -> str | None:
    """'Communication/<id>' of the thread a message is part of, or None. A message is part of one thread
    (part of two, it would reach the second thread's participants without being written to them)."""
    threads = [r for r in refs.of(c.get("partOf")) if r.startswith("Communication/")]
    if len(threads) > 1:
        raise Unprocessable(f"A message is part of one thread, not {len(threads)} ({', '.join(threads)})")
    return threads[0] if threads else None


def kind(c: dict) -> str:
    if thread_of(c) is not None:
        return "message"
    return "single" if c.get("payload") else "header"


def participants(header: dict) -> set[str]:
    """Who takes part in a thread: its subject, sender, recipients and its holder."""
    found = set(refs.of(header.get("subject"))) | set(refs.of(header.get("sender"))) \
        | set(refs.of(header.get("recipient")))
    held = custodian.of(header)
    return found | ({held} if held else set())


def held_by(c: dict, writer) -> bool:
    """Whether the writer's organisation holds this Communication (is its custodian)."""
    held = custodian.of(c)
    return held is not None and held == writer.organization


def creator(header: dict, writer) -> bool:
    """Whether the writer made this thread: its holder's organisation, or its sender."""
    return held_by(header, writer) or writer.is_any(refs.of(header.get("sender")))


def read_header(gtx, ref: str) -> dict:
    """The thread header `ref` as the writer may read it (the request's guarded transaction): a thread
    the writer cannot read answers like one that does not exist (no existence oracle)."""
    rid = ref.split("/", 1)[1]
    try:
        found = gtx.read("Communication", rid, "read")
        if found is None or found.deleted:
            raise NotFound(ref)
    except (NotFound, Gone):
        raise Forbidden(f"partOf names {ref}, which is not a thread you take part in (or does not exist): "
                        "a message joins only a thread its writer can read") from None
    header = jsonio.loads_stored(found.body)
    if kind(header) != "header":
        raise Unprocessable(f"partOf names {ref}, which is a message, not a thread header (a header has no "
                            "payload and no partOf)")
    if header.get("status") in (CLOSED, RETRACTED):
        raise Conflict(f"The thread {ref} is closed (status {header.get('status')}): it takes no more "
                       "messages; its creator may reopen it (status in-progress)")
    return header
