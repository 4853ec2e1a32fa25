"""The steps every request passes, in one before-request, one after-request and one teardown hook.

Flask's dispatch of each hook, and each hook's own look-ups of the request, of g and of the response's
header names, cost every request: seven such hooks took 17 us of a 72 us read (issue 16). Each step
stays with its concern; this module only calls them in order:

- before: the identifier forms of this server (search/identifier_forms.py), the request id and start
  time (accesslog.py);
- after: X-Request-Id and the access log line, nosniff, CORS (resources/);
- teardown: the identifier forms withdrawn.

Installed first, so its before-request steps run before every other hook (the audit trail reads the
request id) and its after-request steps after every other (Flask runs those in reverse).
"""
from __future__ import annotations

from flask import Flask, g, request

from . import accesslog
from .resources import cors, nosniff
from .search import identifier_forms


def install(app: Flask) -> None:
    ctx = app.config["MEDPORT"]
    accesslog.configure(ctx.settings)

    @app.before_request
    def _begin():
        here = g._get_current_object()      # one context lookup each, not one per attribute
        here.medport_forms_token = identifier_forms.activate(ctx.identifier_forms)
        accesslog.start(request._get_current_object(), here)

    @app.after_request
    def _finish(response):
        req, here, headers = request._get_current_object(), g._get_current_object(), response.headers
        names = {name.lower() for name, _ in headers}
        accesslog.finish(response, req, here, names)
        nosniff.apply(headers, names)
        cors.apply(req, headers, names)
        return response

    @app.teardown_request
    def _end(_exc=None):
        token = g._get_current_object().__dict__.pop("medport_forms_token", None)     # g.pop, directly
        if token is not None:
            identifier_forms.deactivate(token)
