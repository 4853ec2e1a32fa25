"""`medport slots generate SCHEDULE_ID --from DATE --to DATE --minutes N [--timezone TZ]`: the Slots of a
Schedule from its actors' opening hours, written by the server (as Schedule/[id]/$generate-slots does
for the hospital; fhirserver/scheduling/slots.py). Idempotent: running it again adds only what is missing."""
from __future__ import annotations

import datetime
import sys
from collections.abc import Callable


def add_parsers(commands, settings_of: Callable) -> None:
    slots = commands.add_parser("slots", help="Schedule slots (docs/scheduling.md)")
    sub = slots.add_subparsers(dest="slots_command", required=True)
    p = sub.add_parser("generate", help="create the free Slots of a Schedule from its actors' opening hours")
    p.add_argument("schedule", metavar="SCHEDULE_ID", help="the Schedule's id")
    p.add_argument("--from", dest="start", required=True, type=_day, help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", required=True, type=_day, help="last day, inclusive (YYYY-MM-DD)")
    p.add_argument("--minutes", required=True, type=int, help="length of each slot, in minutes")
    p.add_argument("--timezone", default="UTC", help="IANA time zone of the opening hours (default UTC)")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=lambda args: run(settings_of(args), args))


def _day(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None


def run(settings, args) -> int:
    from .context import ServerContext
    from .errors import FhirError
    from .scheduling import slots
    from .storage import open_store
    store = open_store(settings)
    try:
        ctx = ServerContext(settings, store)
        with ctx.forms():
            done = slots.generate(ctx, args.schedule, args.start, args.end, args.minutes, args.timezone)
    except (FhirError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"Schedule/{args.schedule}: {done['created']} slots created, {done['existing']} already there")
    return 0
