"""POST /auth/launch reads at most its 16 KiB limit of a body (the same bound as every FHIR body).

Found: a body without Content-Length (chunked; the server marks its input terminated) was read
whole by request.get_data before any size check: a practitioner's token could make a worker hold
gigabytes.
"""
from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from fhirserver.smart_auth import launch
from fhirserver.smart_auth.accounts import Users
from tests.smart_auth._tokens import auth, make_app, mint

TOTAL = 20 * 1024 * 1024


class Endless:
    """A request body of TOTAL bytes that counts what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size=-1):
        size = TOTAL - self.read_bytes if size is None or size < 0 else min(size, TOTAL - self.read_bytes)
        self.read_bytes += size
        return b" " * size

    def readline(self, size=-1):
        return self.read(size if size and size > 0 else 65536)


@pytest.fixture
def app(tmp_path, backend):
    return make_app(tmp_path, backend)


def test_a_chunked_launch_body_is_read_only_up_to_the_limit(app):
    Users(app.config["MEDPORT"].store).add("doc", "correct horse battery", "practitioner",
                                           fhir_user="Practitioner/1")
    token = mint(app, "launch", subject="doc", role="practitioner")
    body = Endless()
    environ = EnvironBuilder(path="/auth/launch", method="POST", data=b"",
                             headers=auth(token, **{"Content-Type": "application/json"})).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": body, "wsgi.input_terminated": True})
    chunks, status, _headers = run_wsgi_app(app, environ)
    b"".join(chunks)
    assert status.startswith("413"), status
    assert body.read_bytes <= launch.MAX_BODY + 1
