"""The rules every stored Communication passes when a token writes it (docs/messages.md "Rules"):

- a message joins only an open thread its writer can read; its subject is the thread's subject and its
  recipients are the thread's participants;
- its sender is the writer (filled in from the token when missing); sent is stamped when missing;
- a Patient named anywhere (subject, sender, recipient) is the subject, so a patient's compartment holds
  exactly the threads about them and the messages of those threads;
- after sending, what was said (payload, sender, subject, recipients, partOf, basedOn, sent) never
  changes; only the sender retracts (status entered-in-error), and a retraction stands; anyone else
  (a recipient) only marks a message read: status completed and received, nothing more (the sender's
  message is not theirs to retitle, reprioritise, annotate or retarget);
- only the thread's creator changes its header (closes, reopens, adds participants); its subject and
  sender stay, and the only Patient it names stays its subject (a second one would put the thread in
  that patient's compartment).
"""
from __future__ import annotations

import datetime

from ..errors import Forbidden, Unprocessable
from . import refs, request, thread
from .thread import RETRACTED

SENT = ("payload", "sender", "subject", "recipient", "partOf", "basedOn", "sent")
READ_MARK = ("status", "received", "meta", "id")     # what a reader changes (meta, id: the server's)
PEOPLE = ("subject", "sender", "recipient")


def check(gtx, writer, new: dict | None, old: dict | None) -> bool:
    """Judge new over old (None: a create; new None: a delete). Returns whether new was filled in."""
    if new is None:
        return _delete(writer, old)
    if old is not None:
        _update(writer, new, old)
        refs.only_subject(new, PEOPLE)
        return False
    filled = _sender(writer, new)
    ref = thread.thread_of(new)
    if ref is not None:
        filled = _join(new, thread.read_header(gtx, ref), ref) or filled
    if new.get("basedOn"):
        filled = request.answer(gtx, writer, new) or filled
    refs.only_subject(new, PEOPLE)
    if new.get("payload") and not new.get("sent"):
        new["sent"], filled = _now(), True
    return filled


def _sender(writer, new: dict) -> bool:
    sender = refs.one(new.get("sender"))
    if sender is None:
        if writer.default is None:
            raise Forbidden("This token names no one (no fhirUser, organisation or patient): it cannot send "
                            "messages")
        new["sender"] = {"reference": writer.default}
        return True
    if not writer.is_any([sender]):
        raise Forbidden(f"The sender {sender} is not you: a message's sender is its writer "
                        f"({', '.join(sorted(writer.own)) or 'no one'})")
    return False


def _join(new: dict, header: dict, ref: str) -> bool:
    filled = False
    subject, theirs = refs.one(new.get("subject")), refs.one(header.get("subject"))
    if subject is None and theirs is not None:
        new["subject"], filled = {"reference": theirs}, True
    elif subject != theirs:
        raise Unprocessable(f"A message's subject is its thread's: {ref} is about {theirs or 'no one'}, "
                            f"not {subject}")
    outsiders = sorted(set(refs.of(new.get("recipient"))) - thread.participants(header))
    if outsiders:
        raise Unprocessable(f"{', '.join(outsiders)} do not take part in {ref}: a message goes to the "
                            "thread's participants (its creator adds participants to the header)")
    return filled


def _update(writer, new: dict, old: dict) -> None:
    if thread.kind(old) == "header":
        if thread.kind(new) != "header":
            raise Unprocessable("A thread header stays a header (no payload, no partOf)")
        if not thread.creator(old, writer):
            raise Forbidden("Only the thread's creator changes its header (closes, reopens it, adds "
                            "participants)")
        for element in ("subject", "sender"):
            if refs.of(new.get(element)) != refs.of(old.get(element)):
                raise Unprocessable(f"A thread's {element} does not change")
        return
    changed = [e for e in SENT if new.get(e) != old.get(e)]
    if changed:
        raise Unprocessable(f"A sent message does not change ({', '.join(changed)}): retract it (status "
                            f"{RETRACTED}) and send another")
    status, was = new.get("status"), old.get("status")
    if was == RETRACTED and status != RETRACTED:
        raise Unprocessable("A retracted message stays retracted")
    if status == RETRACTED and was != RETRACTED and not writer.is_any(refs.of(old.get("sender"))):
        raise Forbidden("Only a message's sender retracts it")
    if writer.is_any(refs.of(old.get("sender"))) or thread.held_by(old, writer):
        return
    others = sorted(e for e in {*new, *old} - set(READ_MARK) if new.get(e) != old.get(e))
    if others or status not in (was, thread.CLOSED):
        raise Forbidden(f"A message's recipient only marks it read (status {thread.CLOSED}, received), not "
                        f"{', '.join(others) or f'status {status}'}: the rest is its sender's")


def _delete(writer, old: dict) -> bool:
    if thread.kind(old) == "header":
        if not thread.creator(old, writer):
            raise Forbidden("Only the thread's creator deletes it")
    elif not writer.is_any(refs.of(old.get("sender"))):
        raise Forbidden(f"Only a message's sender deletes it (a recipient keeps what was sent; the sender "
                        f"retracts it with status {RETRACTED})")
    return False


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
