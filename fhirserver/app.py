"""Builds the Flask application: settings, store, OpenAPI (flask-smorest), blueprints, errors, logs."""
from __future__ import annotations

import logging
import os

from flask import Flask, send_from_directory
from flask.sessions import NullSession, SecureCookieSessionInterface
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from . import __version__, openapi_auth, request_hooks
from .audit_log import middleware as audit_middleware
from .config import Settings
from .context import ServerContext
from .governance import break_glass
from .health_cards import routes as health_card_routes
from .registration import routes as registration_routes
from .resources import errorhandlers, register
from .resources.retry import RetryingFlask
from .smart_auth import admin_routes, bearer
from .smart_auth import routes as smart_routes
from .storage import open_store
from .validation import write_policy

SWAGGER_STATIC = "/fhir/docs/static/"


def build_app(settings: Settings | None = None, store=None) -> Flask:
    settings = settings or Settings.from_env()
    write_policy.check_settings(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    app = MedportFlask("fhirserver")
    app.config.update(
        API_TITLE="Med-Port FHIR R4 API",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/fhir",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_STATIC,
        MAX_FORM_MEMORY_SIZE=settings.max_body_bytes,
        MEDPORT=ServerContext(settings, store or open_store(settings)),
    )
    # nothing is written here: the init step (context.initialize) ran before (`medport serve`,
    # `medport db init`) or, on a fresh store, once when the ServerContext was made
    request_hooks.install(app)      # first: the request id, timing and forms cover every other hook
    if settings.proxy_hops > 0:     # the client's address and scheme as the trusted proxies saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
                                x_host=settings.proxy_hops)
    app.url_map.strict_slashes = False
    app.url_map.converters["rtype"] = ResourceTypeConverter
    api = Api(app, spec_kwargs={"info": {"description": "FHIR R4 (4.0.1) RESTful API of Med-Port. "
                                         "Every error body is a FHIR OperationOutcome."},
                                "extra_plugins": [openapi_auth.install(app, settings, SWAGGER_STATIC)]})
    register(api)
    errorhandlers.install(app)
    smart_routes.install(app)
    admin_routes.install(app)
    health_card_routes.install(api)
    registration_routes.install(app, api)
    audit_middleware.install(app)   # then the audit trail: refused tokens are recorded too
    bearer.install(app)
    audit_middleware.install_drain(app)     # after authentication: readers of the trail see it whole
    break_glass.install(app)     # audits each request that used an emergency session
    _serve_swagger_assets(app)
    _start_audit_log(app, api, settings)
    return app


def _start_audit_log(app: Flask, api, settings: Settings) -> None:
    """The audit log's endpoints, and its integrator thread (docs/audit.md), standing by for the
    background worker's: on unless MEDPORT_AUDIT_INTEGRATOR=off; `auto` (the default) leaves it off
    under pytest."""
    from .audit_log import log as audit_log
    from .audit_log import routes as audit_log_routes
    audit_log_routes.install(api)
    if audit_log.wanted(settings):
        app.config["MEDPORT_AUDIT_INTEGRATOR"] = audit_log.start_thread(app.config["MEDPORT"].store, settings,
                                                                        role="standby")


class _NullSessions(SecureCookieSessionInterface):
    """Med-Port keeps no cookie sessions (tokens carry a client's state; no secret key is set), so every
    request gets Flask's null session: an empty session refusing every change. One shared instance
    serves them all instead of a new one per request (issue 16); with a secret key, sessions are
    Flask's own."""

    _null = NullSession()

    def make_null_session(self, app):
        return self._null


class MedportFlask(RetryingFlask):
    """Flask asks, for every hook and view of every request, whether the function is a coroutine
    (inspect.iscoroutinefunction: about a dozen calls a request, issue 16). The answer depends on the
    function alone, so it is remembered per function (a bound method by its underlying function:
    MethodView binds a new instance per request)."""

    _synchronous: dict = {}
    session_interface = _NullSessions()

    def ensure_sync(self, func):
        key = getattr(func, "__func__", func)
        try:
            known = self._synchronous.get(key)
        except TypeError:       # an unhashable callable: ask Flask each time
            return super().ensure_sync(func)
        if known is None:
            known = super().ensure_sync(func) is func
            if len(self._synchronous) < 4096:
                self._synchronous[key] = known
        return func if known else super().ensure_sync(func)


class ResourceTypeConverter(BaseConverter):
    """Resource types start with a capital letter, so /fhir/metadata or /fhir/_history never
    reach type-level routes; unknown capitalised names get a clear 404 from the interaction."""
    regex = r"[A-Z][A-Za-z]{0,63}"


def _serve_swagger_assets(app: Flask) -> None:
    """Swagger UI's files come from the swagger-ui-bundle package, so /fhir/docs works offline."""
    import swagger_ui_bundle
    root = swagger_ui_bundle.swagger_ui_path

    @app.route(SWAGGER_STATIC + "<path:name>")
    def swagger_asset(name):
        return send_from_directory(root, os.path.basename(name))
