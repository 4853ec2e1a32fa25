"""Doctor-patient threads (docs/messages.md), on both stores: a doctor opens a thread with asha, asha and
her son reply, and the thread's participants (and only they) read every message of it."""
from __future__ import annotations

import pytest

from ._threads import Threads


@pytest.fixture
def t(tmp_path, backend):
    return Threads(tmp_path, backend)


def test_a_thread_between_a_doctor_asha_and_her_son(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}])
    assert header["sender"] == {"reference": "Practitioner/prac-a"}         # filled in from the token
    first = t.say(t.doctor, header, "Please take your readings twice a day")
    reply = t.say(w.asha_token, header, "Will do, doctor")
    son = t.say(w.son_token, header, "I will remind her", sender={"reference": f"RelatedPerson/{w.son}"})
    assert reply["sender"] == {"reference": f"Patient/{w.asha}"} and reply["subject"] == header["subject"]
    assert son["subject"] == header["subject"] and all(m.get("sent") for m in (first, reply, son))
    messages = f"Communication?part-of=Communication/{header['id']}&_sort=sent"
    expected = [first["id"], reply["id"], son["id"]]
    for token in (t.doctor, w.a, w.asha_token, w.son_token):
        assert t.ids(token, messages) == expected
        assert t.ids(token, f"Communication?part-of:missing=true&subject=Patient/{w.asha}") == [header["id"]]


def test_the_documented_recipes(t):
    w = t.w
    asha = f"Patient/{w.asha}"
    header = t.open(recipient=[{"reference": asha}])
    other = t.open()
    t.put(t.doctor, {**other, "status": "completed"})
    first = t.say(t.doctor, header, "Fasting tomorrow", recipient=[{"reference": asha}])
    second = t.say(t.doctor, header, "Bring your old reports", recipient=[{"reference": asha}])
    assert t.ids(w.asha_token, f"Communication?part-of:missing=true&subject={asha}&status=in-progress") == [header["id"]]
    assert set(t.everything(w.asha_token, f"Communication?_id={header['id']}&_revinclude=Communication:part-of")) \
        == {header["id"], first["id"], second["id"]}
    unread = f"Communication?recipient={asha}&part-of:missing=false&received:missing=true&_sort=sent"
    assert t.ids(w.asha_token, unread) == [first["id"], second["id"]]
    t.put(w.asha_token, {**first, "status": "completed", "received": "2031-03-03T09:00:00Z"})
    assert t.ids(w.asha_token, unread) == [second["id"]]
    assert t.ids(w.asha_token, f"Communication?recipient={asha}&part-of:missing=false&status=in-progress") == [second["id"]]


def test_a_hospital_the_creator_names_takes_part_and_sees_every_message(t):
    w = t.w
    header = t.open(recipient=[{"reference": f"Patient/{w.asha}"}, {"reference": "Organization/hosp-b"}])
    first = t.say(t.doctor, header, "Referring Asha to your cardiology clinic")
    reply = t.say(w.b, header, "We will see her on Monday")
    assert reply["sender"] == {"reference": "Organization/hosp-b"}
    thread = f"Communication?part-of=Communication/{header['id']}&_sort=sent"
    for token in (t.doctor, w.a, w.b, w.asha_token, w.son_token):
        assert t.ids(token, thread) == [first["id"], reply["id"]]
    assert t.ids(w.ravi_token, "Communication") == []
    # B takes part but did not create the thread: it neither closes it nor changes A's message
    assert t.status(w.b, "PUT", f"/fhir/Communication/{header['id']}", {**header, "status": "completed"}) == 403
    assert t.status(w.b, "PUT", f"/fhir/Communication/{first['id']}", {**first, "status": "entered-in-error"}) == 403
