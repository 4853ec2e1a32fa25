"""`medport uhid backfill`: Patients stored before UHIDs were issued get one, as a new version
(written like any update, so the UHID is claimed, indexed and then permanent)."""
from __future__ import annotations

from .. import jsonio
from ..errors import PreconditionFailed, Unprocessable
from ..interactions import update as update_i
from ..search import query as q
from ..smart_auth.access import UNRESTRICTED
from . import identifier, number


def backfill(ctx, page: int = 500, problems: list | None = None) -> int:
    """How many patients were given a UHID; a patient that cannot be (its identifier under the UHID
    system is not a valid or free UHID) is listed in `problems` as (id, reason) and left as it is."""
    ctx = ctx.acting_as(UNRESTRICTED)
    problems = [] if problems is None else problems
    done, cursor = 0, None
    while True:
        result = ctx.store.search("Patient", q.And(()), limit=page, cursor=cursor, total="none")
        for v in result.items:
            body = jsonio.loads(v.body)
            if not _valid(identifier.value_of(body, ctx.uhid_system)):
                try:
                    update_i.update(ctx, "Patient", v.id, body, if_match=v.version)
                    done += 1
                except PreconditionFailed:
                    pass        # changed meanwhile: that write gave it a UHID
                except Unprocessable as e:
                    problems.append((v.id, e.issues[0].diagnostics))
        if result.next_cursor is None:
            return done
        cursor = result.next_cursor


def _valid(value) -> bool:
    try:
        return value is not None and number.canonical(value) == value
    except number.InvalidUhid:
        return False
