"""The outbox: messages (SMS or email) the server has to send to a person, recorded durably in the
store's records (kind "outbox") for the deployment's SMS or email gateway to deliver.

Self-registration answers every request alike and continues out of band (OWASP Authentication
cheat sheet, "Authentication and error messages" / account enumeration): what happened (a
confirmation code, "you are already registered", the new UHID and username) goes to the phone or
email on record, never into the HTTP answer. The server itself has no SMS or mail transport: a
gateway (or an operator) reads the pending messages with `medport outbox list` and marks each one
sent with `medport outbox sent ID`. Messages are kept OUTBOX_KEEP_S seconds (they hold
short-lived codes and contact details: treat the store's records as sensitive).
"""
from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable

KIND = "outbox"
OUTBOX_KEEP_S = 7 * 24 * 3600
CHANNELS = ("sms", "email")


def send(store, channel: str, to: str, subject: str, body: str) -> str:
    """Record one message to deliver; returns its id (ordered by time)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} must be one of {', '.join(CHANNELS)}")
    now = time.time()
    message_id = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    store.put_record(KIND, message_id, {"channel": channel, "to": to, "subject": subject, "body": body,
                                        "created": now, "sent": None}, expires_at=now + OUTBOX_KEEP_S)
    return message_id


def messages(store, include_sent: bool = False) -> list[tuple[str, dict]]:
    """(id, message) oldest first; only those not yet sent unless include_sent."""
    return [(k, v) for k, v in store.list_records(KIND) if include_sent or not v.get("sent")]


def mark_sent(store, message_id: str) -> bool:
    """Record that the gateway delivered the message; False if unknown."""
    message = store.get_record(KIND, message_id)
    if message is None:
        return False
    message["sent"] = time.time()
    store.put_record(KIND, message_id, message, expires_at=message["created"] + OUTBOX_KEEP_S)
    return True


# ---- `medport outbox list|sent` ----------------------------------------------------------------

def add_parsers(commands, settings_of: Callable) -> None:
    outbox = commands.add_parser("outbox", help="messages (SMS, email) waiting for the deployment's gateway")
    sub = outbox.add_subparsers(dest="outbox_command", required=True)
    p = sub.add_parser("list", help="list the messages not yet sent (with --all: every message kept)")
    p.add_argument("--all", action="store_true", help="include messages already marked sent")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=lambda args: _run(args, settings_of, _list))
    p = sub.add_parser("sent", help="mark a message as delivered")
    p.add_argument("message_id")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=lambda args: _run(args, settings_of, _sent))


def _run(args, settings_of: Callable, action: Callable) -> int:
    from .storage import open_store
    store = open_store(settings_of(args))
    try:
        return action(args, store)
    finally:
        store.close()


def _list(args, store) -> int:
    import datetime
    for message_id, m in messages(store, include_sent=args.all):
        when = datetime.datetime.fromtimestamp(m["created"], datetime.timezone.utc).isoformat(timespec="seconds")
        state = "sent" if m.get("sent") else "pending"
        print(f"{message_id}  {when}  {state}  {m['channel']} to {m['to']}: {m['subject']}")
        for line in m["body"].splitlines():
            print(f"    {line}")
    return 0


def _sent(args, store) -> int:
    if not mark_sent(store, args.message_id):
        print(f"error: no message {args.message_id!r}", file=sys.stderr)
        return 1
    print(f"message {args.message_id} marked sent")
    return 0
