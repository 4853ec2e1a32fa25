"""FHIR JSON parsing keeps decimal precision and refuses hostile input."""
from __future__ import annotations

import copy

import pytest

from fhirserver import bounds, jsonio
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


# ---- the rules of every client JSON (RFC 8259; security issue 12) --------------------------------

@pytest.mark.parametrize("raw, named", [
    (b'{"gender": "male", "gender": "female"}', "'gender'"),
    (b'{"name": [{"family": "A", "given": ["B"], "family": "C"}]}', "'family'"),
    (b'{"a" : 1,\n "a" : 2}', "'a'"),
    (b'{"a": 1, "b": "\\":", "a": 2}', "'a'"),        # a string holding '":' does not hide it
])
def test_duplicate_keys_are_refused_and_named(raw, named):
    with pytest.raises(BadRequest, match="Duplicate JSON object key") as e:
        jsonio.loads(raw)
    assert named in str(e.value)


def test_same_key_in_different_objects_is_fine():
    assert jsonio.loads(b'{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}')["b"][1]["a"] == 3


@pytest.mark.parametrize("raw", [b'{"v": 1e999}', b'{"v": -1e999}', b'[1E400]', b'[1.0e309]',
                                 b'[' + b'9' * 400 + b'.5]'])
def test_numbers_beyond_a_double_are_refused(raw):
    with pytest.raises(BadRequest, match="out of range"):
        jsonio.loads(raw)


@pytest.mark.parametrize("raw", [b"[NaN]", b"[Infinity]", b"[-Infinity]"])
def test_non_numbers_are_refused(raw):
    with pytest.raises(BadRequest, match="not a JSON number"):
        jsonio.loads(raw)


def test_integers_must_fit_64_bits():
    assert jsonio.loads(b"[9223372036854775807, -9223372036854775808, 123]") == [2 ** 63 - 1, -2 ** 63, 123]
    for raw in (b"[9223372036854775808]", b"[-9223372036854775809]", b"[99999999999999999999999]",
                b"[1" + b"0" * 5000 + b"]"):
        with pytest.raises(BadRequest, match="integers must fit in 64 bits"):
            jsonio.loads(raw)


def test_lone_surrogates_and_bad_utf8_are_refused():
    assert jsonio.loads(b'["\\ud83d\\ude00", "\\u00e9"]') == ["\U0001F600", "\u00e9"]   # a pair is one character
    for raw in (b'["\\ud800"]', b'{"\\udc00": 1}', b'["x\\uDFFFy"]', b'["\\ude00\\ud83d"]'):
        with pytest.raises(BadRequest, match="lone UTF-16 surrogate"):
            jsonio.loads(raw)
    with pytest.raises(BadRequest, match="lone UTF-16 surrogate"):
        jsonio.loads('["\ud800"]')                         # a str from a Python caller
    for raw in (b'["\xed\xa0\x80"]', b'["\xff"]', b'["\xc3"]'):   # an encoded surrogate, invalid bytes
        with pytest.raises(BadRequest, match="not valid UTF-8"):
            jsonio.loads(raw)


def test_escaped_backslash_before_u_is_not_a_surrogate():
    assert jsonio.loads(b'["\\\\ud800"]') == ["\\ud800"]


def test_depth_is_exact():
    for depth in range(1, 8):
        doc = {"a": 1}
        for i in range(depth - 1):
            doc = [doc] if i % 2 else {"x": doc, "y": [1, 2]}
        assert not jsonio.depth_exceeds(doc, depth) and jsonio.depth_exceeds(doc, depth - 1)
    assert not jsonio.depth_exceeds(7, 0) and jsonio.depth_exceeds([], 0)


def test_stored_bodies_parse_without_checks_and_keep_decimals():
    doc = jsonio.loads_stored(b'{"a": 1.50, "b": 1e999}')
    assert jsonio.dumps(doc) == b'{"a":1.50,"b":1e999}'      # written before these rules: still readable


# ---- integers from URLs, headers and cursors ---------------------------------------------------

def test_bounded_integers():
    assert bounds.parse_int("42", "x") == 42 and bounds.parse_int("0009223372036854775807", "x") == 2 ** 63 - 1
    for bad in ("9223372036854775808", "99999999999999999999999", "-1", "1e5", "", " 1", "\u00b2", "\u0663",
                "9" * 5000):
        with pytest.raises(BadRequest, match="must be an integer from 0 to"):
            bounds.parse_int(bad, "x")
    with pytest.raises(BadRequest, match="from 1 to 10"):
        bounds.parse_int("11", "x", low=1, high=10)
