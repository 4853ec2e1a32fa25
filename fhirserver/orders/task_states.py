"""The Task state machine (FHIR R4 task.html#statemachine, workflow-management.html; HL7 Clinical Order
Workflows): which status may follow which, and which party makes each move.

    from          to                                         by
    (new)         draft, requested, ready                    the placer
    draft         requested, ready, cancelled                the placer
    requested     received, accepted, rejected               the owner
                  cancelled                                  the placer
    received      accepted, rejected                         the owner
                  cancelled                                  the placer
    accepted      in-progress                                the owner
                  cancelled                                  the placer
    ready         in-progress, failed                        the owner
                  cancelled                                  the placer
    in-progress   on-hold, completed, failed                 the owner
    on-hold       in-progress, failed                        the owner
    any           entered-in-error                           the placer
    rejected, cancelled, failed, completed, entered-in-error: final (only entered-in-error follows)

Work that has started (in-progress, on-hold) is never cancelled outright: the owner finishes it, fails it
or an abort Task asks it to stop (workflow-management.html, "abort"). The server itself (no token, the
CLI, authorization off) may make any legal move; it also imports Tasks in any status.
"""
from __future__ import annotations

OWNER, PLACER = "owner", "placer"

INITIAL = ("draft", "requested", "ready")
OPEN = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")
STARTED = ("in-progress", "on-hold")
CANCELLABLE = tuple(s for s in OPEN if s not in STARTED)
FINAL = ("rejected", "cancelled", "failed", "completed", "entered-in-error")
ALL = OPEN + FINAL

# status -> {next status: the party that moves it there}
MOVES: dict[str, dict[str, str]] = {
    "draft": {"requested": PLACER, "ready": PLACER},
    "requested": {"received": OWNER, "accepted": OWNER, "rejected": OWNER},
    "received": {"accepted": OWNER, "rejected": OWNER},
    "accepted": {"in-progress": OWNER},
    "ready": {"in-progress": OWNER, "failed": OWNER},
    "in-progress": {"on-hold": OWNER, "completed": OWNER, "failed": OWNER},
    "on-hold": {"in-progress": OWNER, "failed": OWNER},
}
for _status in CANCELLABLE:
    MOVES[_status]["cancelled"] = PLACER
for _status in ALL:
    if _status != "entered-in-error":
        MOVES.setdefault(_status, {})["entered-in-error"] = PLACER

# moves that must say why (task.html: statusReason "the reason for the current status")
NEEDS_REASON = ("rejected", "failed")
NEEDS_OUTPUT = ("completed",)


def mover(old: str, new: str) -> str | None:
    """The party that may move a Task from old to new (None: not a legal transition)."""
    return MOVES.get(old, {}).get(new)


def legal_next(old: str) -> list[str]:
    return sorted(MOVES.get(old, {}))
