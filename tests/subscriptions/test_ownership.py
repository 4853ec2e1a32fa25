"""Who reaches a Subscription (fhirserver/subscriptions/ownership.py), on both stores: the owner of
the token that created it (same client, subject, organisation and patient context) and administrators;
for everyone else it answers exactly like a Subscription that does not exist (404, absent from
searches), whatever the interaction."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.accounts import Users
from fhirserver.subscriptions import ownership, state
from tests.scheduling._world import PASSWORD
from tests.smart_auth._tokens import mint

from ._world import A, World, subscription

HOOK = "https://hooks.example.org/medport"


@pytest.fixture
def world(tmp_path, backend):
    return World(tmp_path, backend)


def _visible(world, token, sid) -> bool:
    read = world.send(token, "GET", f"/fhir/Subscription/{sid}")
    searched = world.send(token, "GET", "/fhir/Subscription").get_json()
    ids = {e["resource"]["id"] for e in searched.get("entry", ())}
    assert (read.status_code == 200) is (sid in ids), (read.status_code, ids)
    if read.status_code != 200:
        nothing = world.send(token, "GET", "/fhir/Subscription/no-such-subscription")
        assert read.status_code == nothing.status_code == 404
        assert read.get_json()["issue"][0]["diagnostics"].replace(sid, "X") == \
            nothing.get_json()["issue"][0]["diagnostics"].replace("no-such-subscription", "X")
    return read.status_code == 200


def test_only_the_owner_and_administrators_reach_it(world):
    sub = world.subscribe(world.a, HOOK)
    sid = sub["id"]
    other_client_same_org = mint(world.app, "system/*.cruds", client_id="hosp-a-lab", organization=A)
    Users(world.ctx.store).add("root", PASSWORD, "admin")
    admin = mint(world.app, "user/*.cruds", subject="root", role="admin")
    assert _visible(world, world.a, sid)
    assert _visible(world, admin, sid)
    for token in (world.b, other_client_same_org, world.asha_token, world.son_token):
        assert not _visible(world, token, sid)
        sub_put = {**sub, "channel": {**sub["channel"], "endpoint": "https://evil.example.org/x"}}
        assert world.send(token, "PUT", f"/fhir/Subscription/{sid}", sub_put).status_code == 404
        assert world.send(token, "DELETE", f"/fhir/Subscription/{sid}").status_code == 404
        assert world.send(token, "GET", f"/fhir/Subscription/{sid}/_history").status_code == 404
        for op in ("$status", "$events"):
            assert world.send(token, "GET", f"/fhir/Subscription/{sid}/{op}").status_code == 404
    assert world.send(world.a, "GET", f"/fhir/Subscription/{sid}").get_json()["channel"]["endpoint"] == HOOK
    assert world.send(world.a, "DELETE", f"/fhir/Subscription/{sid}").status_code == 204


def test_a_patient_subscribes_and_sees_only_their_own(world):
    mine = world.subscribe(world.asha_token, HOOK, topic_name="diagnostic-report-final")
    theirs = world.subscribe(world.ravi_token, HOOK, topic_name="diagnostic-report-final")
    assert _visible(world, world.asha_token, mine["id"]) and not _visible(world, world.asha_token, theirs["id"])
    assert _visible(world, world.ravi_token, theirs["id"]) and not _visible(world, world.ravi_token, mine["id"])
    assert world.send(world.asha_token, "GET", f"/fhir/Subscription/{mine['id']}/$status").status_code == 200
    proxied = world.subscribe(world.son_token, HOOK, topic_name="appointment-booked-cancelled")
    assert _visible(world, world.son_token, proxied["id"]) and not _visible(world, world.asha_token, proxied["id"])
    assert not _visible(world, world.son_token, mine["id"])


def test_an_owner_has_a_bounded_number_of_subscriptions(world, monkeypatch):
    """Every live subscription costs every write of its topic's type (events.py): an owner may hold
    ownership.MAX_PER_OWNER of them (422 beyond); deleting one frees its place; another owner is not
    counted against it."""
    monkeypatch.setattr(ownership, "MAX_PER_OWNER", 2)
    first = world.subscribe(world.a, HOOK)
    world.subscribe(world.a, HOOK)
    r = world.send(world.a, "POST", "/fhir/Subscription", subscription(HOOK))
    assert r.status_code == 422 and "at most 2" in r.get_json()["issue"][0]["diagnostics"]
    world.subscribe(world.b, HOOK)
    assert world.send(world.a, "PUT", f"/fhir/Subscription/{first['id']}", first).status_code == 200
    assert world.send(world.a, "DELETE", f"/fhir/Subscription/{first['id']}").status_code == 204
    world.subscribe(world.a, HOOK)


def test_the_guard_reads_the_owners_index_not_every_subscription(world, monkeypatch):
    """ownership.owned_ids is asked on every guarded Subscription query: one record, whatever the
    number of subscriptions others hold."""
    mine = world.subscribe(world.a, HOOK)["id"]
    world.subscribe(world.b, HOOK)
    listed = world.ctx.store.list_records

    def list_records(kind):
        assert kind != state.SUB, "a guarded query listed every subscription record"
        return listed(kind)
    monkeypatch.setattr(world.ctx.store, "list_records", list_records)
    assert _visible(world, world.a, mine) and not _visible(world, world.b, mine)
