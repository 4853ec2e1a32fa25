"""Operations endpoints outside FHIR: liveness and readiness probes."""
from __future__ import annotations

from flask_smorest import Blueprint

from . import ctx

blp = Blueprint("ops", __name__, description="Liveness and readiness probes")


@blp.route("/healthz")
def healthz():
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


@blp.route("/readyz")
def readyz():
    """Readiness: the store answers (503 with an OperationOutcome if not)."""
    ctx().store.ping()
    return {"status": "ready"}
