"""The communication-received topic (docs/messages.md, docs/subscriptions.md) on both stores: a new
message is an event only for subscribers who take part in its thread; an outsider's subscription (another
patient, another hospital, even with the patient's Consent sharing all her records) counts no event, so
its $status and $events do not reveal that a thread exists or grows."""
from __future__ import annotations

import pytest

from fhirserver.subscriptions import state
from tests.governance.test_org_leaks import consent_for
from tests.subscriptions._world import B, status_of
from tests.subscriptions._world import World as SubscriptionWorld

from ._threads import Threads

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def t(tmp_path, backend):
    return Threads(tmp_path, backend, world=SubscriptionWorld)


def test_only_the_thread_s_participants_are_told_of_a_new_message(t):
    w = t.w
    consent = consent_for(f"Patient/{w.asha}", actor=B)
    del consent["provision"]["class"]                                       # every type, to B
    assert w.send(w.asha_token, "POST", "/fhir/Consent", consent).status_code == 201
    subs = {who: w.subscribe(token, HOOK, topic_name="communication-received")["id"]
            for who, token in (("a", w.a), ("b", w.b), ("asha", w.asha_token), ("son", w.son_token),
                               ("ravi", w.ravi_token))}
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    said = [t.say(t.doctor, header, "How are you?"), t.say(w.asha_token, header, "Better")]
    focus = {f"Communication/{m['id']}" for m in said}

    def told(who):
        return {e["focus"].split("/_history")[0] for e in state.events(w.ctx.store, subs[who])} & focus

    for who in ("a", "asha", "son"):
        assert told(who) == focus, who
    for who in ("b", "ravi"):
        assert state.events(w.ctx.store, subs[who]) == [], who
        token = w.b if who == "b" else w.ravi_token
        r = w.send(token, "GET", f"/fhir/Subscription/{subs[who]}/$status")
        assert r.status_code == 200 and status_of(r.get_json())["events-since-subscription-start"] == "0", who
        r = w.send(token, "GET", f"/fhir/Subscription/{subs[who]}/$events")
        assert r.status_code == 200 and status_of(r.get_json())["notification-event"] == [], who
