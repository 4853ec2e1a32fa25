"""FHIR JSON parsing keeps decimal precision and refuses hostile input."""
from __future__ import annotations

import copy

import pytest

from fhirserver import jsonio
from fhirserver.errors import BadRequest


def test_decimals_keep_their_text():
    doc = jsonio.loads(b'{"a": 1.50, "b": [2.0e3, 3, 0.1], "c": 100}')
    assert jsonio.dumps(doc) == b'{"a":1.50,"b":[2.0e3,3,0.1],"c":100}'
    assert doc["a"] == 1.5 and isinstance(doc["a"], float)
    assert jsonio.dumps(copy.deepcopy(doc)) == jsonio.dumps(doc)


@pytest.mark.parametrize("raw", [b"{", b"NaN", b'{"a": Infinity}', b"\xff", b"[" * 50000])
def test_malformed(raw):
    with pytest.raises(BadRequest):
        jsonio.loads(raw)


def test_depth_limit():
    assert jsonio.loads(b'{"a": {"b": {"c": 1}}}', max_depth=3)
    with pytest.raises(BadRequest):
        jsonio.loads(b'{"a": {"b": {"c": {}}}}', max_depth=3)
