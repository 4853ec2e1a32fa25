"""The HTTP layer: thin flask-smorest blueprints grouped by interaction level
(system, type, instance), never one per FHIR type. Views parse, negotiate,
call an interaction and render; business rules live in fhirserver.interactions.
"""
from __future__ import annotations

from flask import current_app, g

from ..context import ServerContext


def ctx() -> ServerContext:
    """The server, acting with the request's access rights (smart_auth.bearer sets them)."""
    return g._get_current_object().__dict__.get("medport_ctx") or current_app.config["MEDPORT"]   # g.get


def register(api) -> None:
    from ..bulk import routes as bulk_routes
    from . import instance, operations, operations_routes, system, type_level
    for module in (operations, operations_routes, system, type_level, instance):
        api.register_blueprint(module.blp)
    bulk_routes.install(api)
