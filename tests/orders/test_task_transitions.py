"""Every Task status transition (task.html#statemachine; fhirserver/orders/task_states.py), legal and
illegal, tried by the owner (lab B), the placer (hospital A), the patient and a third hospital C, on both
stores: exactly the mover the table names succeeds; an illegal move is 400 naming it for whoever may
write the Task; the third hospital sees no Task at all (404)."""
from __future__ import annotations

import collections

import pytest

from fhirserver.orders import task_states
from tests.conftest import STORES
from tests.orders._orders import Orders, output, reason, set_status, task

PAIRS = [(a, b) for a in task_states.ALL for b in task_states.ALL if a != b]
EXPECTED_LEGAL = {
    ("draft", "requested"), ("draft", "ready"), ("draft", "cancelled"),
    ("requested", "received"), ("requested", "accepted"), ("requested", "rejected"), ("requested", "cancelled"),
    ("received", "accepted"), ("received", "rejected"), ("received", "cancelled"),
    ("accepted", "in-progress"), ("accepted", "cancelled"),
    ("ready", "in-progress"), ("ready", "failed"), ("ready", "cancelled"),
    ("in-progress", "on-hold"), ("in-progress", "completed"), ("in-progress", "failed"),
    ("on-hold", "in-progress"), ("on-hold", "failed"),
} | {(s, "entered-in-error") for s in task_states.ALL if s != "entered-in-error"}


def test_the_table_is_the_r4_state_machine():
    legal = {(a, b) for a, b in PAIRS if task_states.mover(a, b)}
    assert legal == EXPECTED_LEGAL
    assert task_states.mover("in-progress", "cancelled") is None
    assert task_states.mover("on-hold", "cancelled") is None


@pytest.fixture(scope="module", params=STORES)
def w(request, tmp_path_factory):
    return Orders(tmp_path_factory.mktemp("orders"), request.param)


def _path(start: str, goal: str) -> list[str]:
    """The legal moves from start to goal (breadth first)."""
    seen, todo = {start: []}, collections.deque([start])
    while todo:
        at = todo.popleft()
        for nxt in task_states.legal_next(at):
            if nxt not in seen:
                seen[nxt] = seen[at] + [nxt]
                todo.append(nxt)
    return seen[goal]


def _task_in(w, status: str) -> str:
    """A Task placed by A for lab B, walked to status by the server (the exchange's tool)."""
    first = status if status in task_states.INITIAL else "requested"
    tid = w.create(w.a, task(w.sr, w.p1, first))
    for step in _path(first, status):
        r = set_status(w, w.exchange, tid, step, output=output("DiagnosticReport/r1"), statusReason=reason())
        assert r.status_code == 200, r.get_data(as_text=True)
    return tid


@pytest.mark.parametrize("old,new", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_each_transition_by_each_party(w, old, new):
    tid = _task_in(w, old)
    mover = task_states.mover(old, new)
    parties = {"third": w.c, "patient": w.p1_token, "owner": w.b, "placer": w.a}
    order = sorted(parties, key=lambda p: p == mover)          # the one who may moves last
    for party in order:
        r = set_status(w, parties[party], tid, new, output=output("DiagnosticReport/r1"), statusReason=reason())
        text = r.get_data(as_text=True)
        if party == "third":
            assert r.status_code == 404, text                  # C does not see the Task at all
        elif mover is None:
            assert r.status_code == 400, text
            assert f"Task status {old} -> {new} is not allowed" in text
        elif party == mover:
            assert r.status_code == 200, text
            assert r.get_json()["status"] == new
        else:
            assert r.status_code == 403, text
    if mover is None:
        stored = w.send(w.a, "GET", f"/fhir/Task/{tid}").get_json()
        assert stored["status"] == old
