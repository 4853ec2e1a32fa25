"""Med-Port: a FHIR R4 (4.0.1) health information exchange server."""
from __future__ import annotations

__version__ = "0.1.0"


def create_app(settings=None, store=None):
    """The Flask application (WSGI). Import-light: Flask loads only when an app is made."""
    from .app import build_app
    return build_app(settings, store)
