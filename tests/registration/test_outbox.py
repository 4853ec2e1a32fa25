"""The outbox: messages for the deployment's SMS/email gateway, kept in the store, and
`medport outbox list|sent`."""
from __future__ import annotations

import pytest

from fhirserver import outbox
from fhirserver.cli import main
from fhirserver.storage import open_store
from tests.conftest import make_settings


def test_messages_are_recorded_listed_and_marked_sent(tmp_path, capsys):
    """Through the CLI, on the SQLite store a separate process opens by URL (an in-memory mongomock
    store exists in one process only; the store functions run on both stores below)."""
    settings = make_settings(tmp_path)
    store = open_store(settings)
    first = outbox.send(store, "sms", "+91 98100 00000", "Your code", "Your code is ABCD.\nSecond line")
    second = outbox.send(store, "email", "asha@example.in", "Hello", "Hi")
    assert [k for k, _m in outbox.messages(store)] == [first, second]
    with pytest.raises(ValueError):
        outbox.send(store, "pigeon", "x", "y", "z")
    assert main(["outbox", "list", "--store", settings.store]) == 0
    out = capsys.readouterr().out
    assert first in out and "sms to +91 98100 00000: Your code" in out and "    Second line" in out
    assert main(["outbox", "sent", first, "--store", settings.store]) == 0
    assert f"message {first} marked sent" in capsys.readouterr().out
    assert [k for k, _m in outbox.messages(store)] == [second]
    assert [k for k, _m in outbox.messages(store, include_sent=True)] == [first, second]
    assert main(["outbox", "list", "--store", settings.store]) == 0 and first not in capsys.readouterr().out
    assert main(["outbox", "sent", "nope", "--store", settings.store]) == 1


def test_messages_survive_in_every_store(ctx):
    outbox.send(ctx.store, "email", "a@example.in", "s", "b")
    assert outbox.messages(ctx.store)[0][1]["to"] == "a@example.in"
