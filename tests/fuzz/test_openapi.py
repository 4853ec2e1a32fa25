"""schemathesis against /fhir/openapi.json, in-process through the WSGI app (no running server):
every operation of the description, with a system/*.cruds token and without one. Each answer: no 5xx,
within the time bound, errors as OperationOutcome JSON (_harness.check_answer)."""
from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
import schemathesis

from ._budget import fuzz
from ._harness import check_answer, describe_request, make_server

_DIR = tempfile.mkdtemp(prefix="medport-fuzz-openapi-")
atexit.register(shutil.rmtree, _DIR, True)
SERVER = make_server(_DIR)
schema = schemathesis.openapi.from_wsgi("/fhir/openapi.json", SERVER.app)


def _sent(case, headers: dict) -> str:
    kwargs = case.as_transport_kwargs(headers=headers)
    url = kwargs.get("url") or kwargs.get("path", "")
    query = kwargs.get("query_string") or kwargs.get("params")
    body = kwargs.get("data", kwargs.get("json"))
    return describe_request(case.method.upper(), f"{url}{'?' + str(query) if query else ''}", body,
                            kwargs.get("headers"))


def _content_type(headers) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value[0] if isinstance(value, list) else value
    return ""


@pytest.mark.parametrize("authorized", [True, False], ids=["token", "no-token"])
@schema.parametrize()
@fuzz(scale=0.5)
def test_openapi_operation(case, authorized):
    headers = dict(SERVER.headers) if authorized else {}
    describe = _sent(case, headers)
    response, elapsed = SERVER.runner.run(lambda: case.call(headers=headers), describe)
    check_answer(response.status_code, _content_type(response.headers), response.content, elapsed, describe,
                 describe.split(" ", 1)[0])
    sent = describe.split(" ", 1)[0]      # the method sent (schemathesis also tries undeclared ones)
    if not authorized and case.path.startswith("/fhir/") and response.status_code < 400 \
            and case.path not in OPEN_PATHS and sent != "OPTIONS":      # CORS preflights are open
        raise AssertionError(f"answered {response.status_code} without a token: {describe}")


# Open without a token by design: discovery, docs, health card keys and verification, self-registration.
OPEN_PATHS = {"/fhir/metadata", "/fhir/.well-known/jwks.json", "/fhir/.well-known/crl/{kid}.json",
              "/fhir/$verify-health-card"}
