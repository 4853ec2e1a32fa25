"""The HTTP layer: thin flask-smorest blueprints grouped by interaction level
(system, type, instance), never one per FHIR type. Views parse, negotiate,
call an interaction and render; business rules live in fhirserver.interactions.
"""
from __future__ import annotations

from flask import current_app

from ..context import ServerContext


def ctx() -> ServerContext:
    return current_app.config["MEDPORT"]


def register(api) -> None:
    from . import instance, operations, operations_routes, system, type_level
    for module in (operations, operations_routes, system, type_level, instance):
        api.register_blueprint(module.blp)
