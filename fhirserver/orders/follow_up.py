"""The server's own follow-up writes of the order workflow (request.html, workflow-management.html):
a request completed with its fulfilment Task, the open Tasks of a revoked request cancelled, a proposal
completed by the order that approves it. Each goes through the one write path
(interactions/common.store_new_version) in the SAME store transaction as the write that caused it, with
the server's unrestricted rights, and leaves the record in its custodian's custody (the placer keeps it).
The version keeps the write-origin tag of the one it changes (a patient's proposal stays the patient's
word, never becomes attested); its Provenance is the unit's.
"""
from __future__ import annotations

import copy

from .. import jsonio
from ..search import query as q
from ..search.kinds.reference_kind import RefCond
from ..search.parse import parse_search
from . import task_states

MAX_TASKS = 100      # the open Tasks of one request the server follows up in one write


def change(tx, base: str, rtype: str, id: str, **fields) -> None:
    """Store the current rtype/id with `fields` set (None: removed), as the server."""
    from ..interactions.common import store_server_written
    current = tx.read(rtype, id)
    if current is None or current.deleted:
        return
    resource = copy.deepcopy(jsonio.loads_stored(current.body))
    for key, value in fields.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    store_server_written(tx, base, resource, current=current)


def open_tasks(tx, rtype: str, id: str) -> list[dict]:
    """The open Tasks whose focus is rtype/id (read in the transaction, unguarded: server work)."""
    focus = q.Match("reference", "Task.focus", RefCond(rtype, id))
    status = parse_search("Task", [("status", ",".join(task_states.OPEN))]).query
    found = tx.search("Task", q.And((focus, status)), MAX_TASKS + 1, None)
    return [jsonio.loads_stored(v.body) for v in found]
