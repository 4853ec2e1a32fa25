"""resources/response_headers.py sets headers exactly as werkzeug's Headers.set and setdefault do."""
from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from fhirserver.resources.response_headers import add_absent, present, put

CASES = [[], [("ETag", 'W/"1"')], [("etag", "a"), ("Content-Type", "x")],
         [("X-Request-Id", "a"), ("ETag", "b"), ("x-request-id", "c")], [("X-REQUEST-ID", "z")]]


@pytest.mark.parametrize("items", CASES)
def test_same_as_werkzeug(items):
    for name in ("X-Request-Id", "ETag", "Nosniff"):
        ours, theirs = Headers(items), Headers(items)
        assert present(ours, name) == (name in theirs)
        put(ours, name, "v")
        theirs[name] = "v"
        assert list(ours) == list(theirs)
        ours, theirs = Headers(items), Headers(items)
        names = {key.lower() for key, _ in ours}
        add_absent(ours, names, name, "w")
        theirs.setdefault(name, "w")
        assert list(ours) == list(theirs) and name.lower() in names
