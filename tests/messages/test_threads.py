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
