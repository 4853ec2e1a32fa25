"""MedportFlask remembers, per function, that a hook or view is synchronous (Flask would ask
inspect.iscoroutinefunction on every request); a coroutine function still gets Flask's own answer."""
from __future__ import annotations

import pytest
from flask import Flask

from fhirserver.app import MedportFlask


class View:
    def get(self):
        return "ok"


def test_sync_functions_are_returned_as_they_are_and_remembered_once():
    app = MedportFlask("t")

    def hook():
        return None

    assert app.ensure_sync(hook) is hook and app.ensure_sync(hook) is hook
    before = len(MedportFlask._synchronous)
    for _ in range(50):     # a new bound method each request (MethodView): one entry, its function
        method = View().get
        assert app.ensure_sync(method) is method
    assert len(MedportFlask._synchronous) <= before + 1


def test_a_coroutine_function_gets_flasks_answer_every_time():
    async def view():
        return "ok"

    def flask_answer():
        try:
            return Flask("plain").ensure_sync(view)
        except RuntimeError as e:   # Flask without its async extra
            return e

    expected = flask_answer()
    app = MedportFlask("t")
    for _ in range(2):
        if isinstance(expected, RuntimeError):
            with pytest.raises(RuntimeError):
                app.ensure_sync(view)
        else:
            assert app.ensure_sync(view) is not view


def test_every_request_shares_one_null_session_that_refuses_changes(app):
    from flask import session
    seen = []
    for path in ("/fhir/metadata", "/fhir/Patient"):
        with app.test_request_context(path):
            app.preprocess_request()
            seen.append(session._get_current_object())
            assert dict(session) == {}
            with pytest.raises(RuntimeError):
                session["user"] = "x"
    assert seen[0] is seen[1] is app.session_interface.make_null_session(app)


def test_with_a_secret_key_sessions_are_flasks_own(app):
    from flask import session
    app.secret_key = "k"
    with app.test_request_context("/fhir/metadata"):
        app.preprocess_request()
        session["user"] = "x"
        assert not app.session_interface.is_null_session(session._get_current_object())
