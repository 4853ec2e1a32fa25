"""`medport uhid backfill`: Patients stored before UHIDs were issued get one, as a new version
(written like any update, so the UHID is claimed, indexed and then permanent)."""
from __future__ import annotations

from .. import jsonio
from ..errors import PreconditionFailed
from ..interactions import update as update_i
from ..search import query as q
from ..smart_auth.access import UNRESTRICTED
from . import identifier


def backfill(ctx, page: int = 500) -> int:
    ctx = ctx.acting_as(UNRESTRICTED)
    done, cursor = 0, None
    while True:
        result = ctx.store.search("Patient", q.And(()), limit=page, cursor=cursor, total="none")
        for v in result.items:
            body = jsonio.loads(v.body)
            if identifier.value_of(body, ctx.uhid_system) is None:
                try:
                    update_i.update(ctx, "Patient", v.id, body, if_match=v.version)
                    done += 1
                except PreconditionFailed:
                    pass        # changed meanwhile: that write gave it a UHID
        if result.next_cursor is None:
            return done
        cursor = result.next_cursor
