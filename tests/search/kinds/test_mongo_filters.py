"""mongo() == match() for every kind: random index rows stored as the MongoDB store lays them
out (one element {p, g, <COLUMNS>} per row, in an array per resource), random conditions
from parse(), and the resources {"rows": {"$elemMatch": {"p": key, **mongo(cond)}}} finds
compared with those where some row satisfies match(). Every filter is also walked: field
names only COLUMNS, operators only from an allow-list, every value plain data.

special (near) is the exception by design: mongo() is a bounding box, a superset of
match(); its test proves the superset, and test_store_near_is_exact that the store's filter
(the box and the exact distance test of storage/mongo_query.near) finds exactly what match() does.

Runs on mongomock; MEDPORT_TEST_MONGODB_URI runs it on a real server instead.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import uuid
from types import SimpleNamespace

import mongomock
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from fhirserver.errors import BadRequest
from fhirserver.search.kinds import date_kind as D
from fhirserver.search.kinds import number_kind as N
from fhirserver.search.kinds import quantity_kind as Q
from fhirserver.search.kinds import reference_kind as R
from fhirserver.search.kinds import special_kind as SP
from fhirserver.search.kinds import string_kind as S
from fhirserver.search.kinds import token_kind as T
from fhirserver.search.kinds import uri_kind as U
from fhirserver.storage.mongo_layout import index_doc
from fhirserver.storage.mongo_query import near as mongo_near
from tests.search.kinds import test_date_kind as date_tests
from tests.search.kinds import test_number_kind as number_tests
from tests.search.kinds import test_quantity_kind as quantity_tests

KEY = "Resource.param"
UCUM = "http://unitsofmeasure.org"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE = ['{"$ne": null}', "$where", "a.*", "(a+)+$", "$gt", "$ne", "$regex", "this.a == 1", ".*", "^$",
           "\\", "a\\", "[a-z]", "{$exists: true}", "$", "$$ROOT", "$lat", "\x00", "\U0010ffff", ""]


# ---- the collection and the check ---------------------------------------------------

@pytest.fixture(scope="module")
def coll():
    uri = os.environ.get("MEDPORT_TEST_MONGODB_URI", "")
    if not uri:
        yield mongomock.MongoClient().db.c
        return
    import pymongo
    client = pymongo.MongoClient(uri)
    name = f"medport_test_kinds_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name].c
    finally:
        client.drop_database(name)
        client.close()


def element(kind, key, row) -> dict:
    assert len(row) == len(kind.COLUMNS)
    return {"p": key, "g": 0, **dict(zip(kind.COLUMNS, row))}


def found(coll, kind, docs: list[list[tuple]], cond) -> set[int]:
    """Store docs (each a list of rows under KEY; the next doc's rows under another key, which
    must not count) and run the store's query."""
    coll.delete_many({})
    coll.insert_many([{"_id": i, "rows": [element(kind, "Other.param", r) for r in docs[(i + 1) % len(docs)]]
                                         + [element(kind, KEY, r) for r in rows]}
                      for i, rows in enumerate(docs)])
    flt = kind.mongo(cond)
    assert_safe(kind, flt)
    return {d["_id"] for d in coll.find({"rows": {"$elemMatch": {"p": KEY, **flt}}}, {"_id": 1})}


def expected(kind, docs: list[list[tuple]], cond) -> set[int]:
    return {i for i, rows in enumerate(docs) if any(kind.match(cond, r) for r in rows)}


def check(coll, kind, docs, cond):
    assert found(coll, kind, docs, cond) == expected(kind, docs, cond), (cond, kind.mongo(cond), docs)


def parsed(parse, *args):
    try:
        return parse(*args)
    except BadRequest:
        reject()


# ---- the filter walk ------------------------------------------------------------------

LOGICAL = {"$and", "$or"}                                  # lists of filters, at element level
VALUE_OPS = {"$eq", "$gt", "$gte", "$lt", "$lte"}          # one plain value
ALLOWED = LOGICAL | VALUE_OPS | {"$in", "$not", "$regex"}
PLAIN = (str, int, float, bool, type(None))
_LITERAL_PATTERN = re.compile(r"(?:\\x00|\\[^0-9A-Za-z]|[^\\()\[\]{}?*+|^$.])*", re.S)


def literal_of(pattern: str) -> str:
    """The text a literal pattern stands for (the inverse of S.mongo_literal_regex)."""
    assert _LITERAL_PATTERN.fullmatch(pattern), pattern
    text = re.sub(r"\\x00|\\(.)", lambda m: m.group(1) or "\x00", pattern, flags=re.S)
    assert S.mongo_literal_regex(text) == pattern
    assert re.search(pattern, "<" + text + ">", re.S) is not None
    return text


def assert_safe(kind, flt, field=None) -> None:
    """Field names only COLUMNS; operators only ALLOWED; every string (a '$' in it or not) a
    plain value under $eq/$in/a range operator, or a literal (re.escape()d) $regex."""
    assert isinstance(flt, dict) and flt, flt
    for k, v in flt.items():
        if not k.startswith("$"):
            assert field is None and k in kind.COLUMNS, k
            assert isinstance(v, dict) and v and all(op.startswith("$") for op in v), v
            assert_safe(kind, v, k)
            continue
        assert k in ALLOWED, k
        if k in LOGICAL:
            assert field is None and isinstance(v, list) and v
            for part in v:
                assert_safe(kind, part)
        elif k == "$not":
            assert field is not None and isinstance(v, dict) and v and all(op in VALUE_OPS for op in v)
            assert_safe(kind, v, field)
        elif k in VALUE_OPS:
            assert field is not None and isinstance(v, PLAIN), (k, v)
        elif k == "$in":
            assert field is not None and isinstance(v, list) and all(isinstance(x, PLAIN) for x in v), v
        else:   # $regex
            assert field is not None and isinstance(v, str)
            literal_of(v)


# ---- string ---------------------------------------------------------------------------

STRING_P = SimpleNamespace(code="name")
_PIECES = ["a", "b", "A", "é", "É", "ß", "ǅ", " ", ".", "*", "$", "\\", "/", "\x00", "\ud7ff", "\ue000",
           "\U0010ffff", "$gt", "a.*", "(a+)+$", '{"$ne": null}']
texts = st.lists(st.sampled_from(_PIECES), max_size=4).map("".join)
string_values = st.one_of(texts, texts, st.builds(lambda f, g: {"family": f, "given": [g]}, texts, texts))


@SETTINGS
@given(docs=st.lists(st.lists(string_values, max_size=3), min_size=1, max_size=5),
       modifier=st.sampled_from(["", "exact", "contains"]), data=st.data())
def test_string(coll, docs, modifier, data):
    rows = [S.rows([(v, None) for v in values], STRING_P) for values in docs]
    exact = [r[1] for rs in rows for r in rs]
    if exact and data.draw(st.booleans()):      # a piece of a stored value: hits are likely
        s = data.draw(st.sampled_from(exact))
        i, j = sorted(data.draw(st.tuples(st.integers(0, len(s)), st.integers(0, len(s)))))
        value = s[i:j] if modifier != "exact" else s
    else:
        value = data.draw(texts)
    raw = value.replace("\\", "\\\\").replace("$", data.draw(st.sampled_from(["$", "\\$"])))
    check(coll, S, rows, S.parse(STRING_P, modifier, raw))


def test_string_prefix_is_a_range_exactly():
    assert S.mongo(S.parse(STRING_P, "", "ab")) == {"folded": {"$gte": "ab", "$lt": "ac"}}
    assert S.mongo(S.parse(STRING_P, "", "a\U0010ffff")) == {"folded": {"$gte": "a\U0010ffff", "$lt": "b"}}
    assert S.mongo(S.parse(STRING_P, "", "a\ud7ff")) == {"folded": {"$gte": "a\ud7ff", "$lt": "a\ue000"}}
    assert S.mongo(S.parse(STRING_P, "", "")) == {"folded": {"$gte": ""}}
    assert S.mongo(S.parse(STRING_P, "", "\U0010ffff")) == {"folded": {"$gte": "\U0010ffff"}}


# ---- token ----------------------------------------------------------------------------

TOKEN_P = SimpleNamespace(code="code")
SYSTEMS = ["http://loinc.org", "urn:x", "$where", "a.*", "a|b"]
CODES = ["718-7", "a", "A", "$gt", '{"$ne": null}', "(a+)+$", "x\\"]
TEXTS = ["Hémoglobin", "hemo", "$ne", "a.*", "b"]
opt = st.sampled_from


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


codings = st.builds(lambda s, c, d: _drop_none({"system": s, "code": c, "display": d}),
                    opt([None] + SYSTEMS), opt([None] + CODES), opt([None] + TEXTS))
token_values = st.one_of(
    opt(CODES).map(lambda c: (c, None)),
    st.booleans().map(lambda b: (b, None)),
    st.integers(0, 3).map(lambda i: (i, None)),
    codings.filter(bool).map(lambda c: (c, "Coding")),
    st.builds(lambda cs, t: (_drop_none({"coding": cs, "text": t}), "CodeableConcept"),
              st.lists(codings, max_size=2), opt([None] + TEXTS)),
    st.builds(lambda s, v, tcs, tt: (_drop_none({"system": s, "value": v,
                                                 "type": _drop_none({"coding": tcs, "text": tt})}), "Identifier"),
              opt([None] + SYSTEMS), opt(CODES), st.lists(codings, max_size=2), opt([None] + TEXTS)),
    opt(CODES).map(lambda v: ({"system": "phone", "value": v}, "ContactPoint")),
)


def esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|")


token_queries = st.one_of(
    opt(CODES + [""]).map(lambda c: ("", esc(c))),
    st.tuples(opt(SYSTEMS + [""]), opt(CODES + [""])).map(lambda t: ("", f"{esc(t[0])}|{esc(t[1])}")),
    st.one_of(opt(TEXTS + HOSTILE), st.text(max_size=3)).map(lambda t: ("text", esc(t))),
    st.tuples(opt(SYSTEMS), opt(CODES), opt(CODES)).map(lambda t: ("of-type", "|".join(map(esc, t)))),
)


@SETTINGS
@given(docs=st.lists(st.lists(token_values, max_size=3), min_size=1, max_size=5), query=token_queries)
def test_token(coll, docs, query):
    cond = parsed(T.parse, TOKEN_P, *query)
    # :of-type searches the Identifier.type rows, which the store keeps under '<param>:of-type'
    rows_of = T.of_type_rows if isinstance(cond, T.OfType) else (lambda vs: T.rows(vs, TOKEN_P))
    check(coll, T, [rows_of(values) for values in docs], cond)


@SETTINGS
@given(docs=st.lists(st.lists(token_values, max_size=3), min_size=1, max_size=5),
       pairs=st.frozensets(st.tuples(opt([s for s in SYSTEMS if s]), opt(CODES)), max_size=4))
def test_token_code_in(coll, docs, pairs):
    """:in, :not-in, :below, :above become one CodeIn (search/token_sets.py)."""
    check(coll, T, [T.rows(values, TOKEN_P) for values in docs], T.CodeIn(pairs))


def test_token_null_columns():
    rows = [[("", None, "hemo")], [("", "a", None)], [("", "", None)], [("urn:x", None, None)]]
    assert expected(T, rows, T.parse(TOKEN_P, "", "")) == {2}            # code "" is not a null code
    assert expected(T, rows, T.parse(TOKEN_P, "text", "")) == {0}        # a null text has no prefix
    assert expected(T, rows, T.parse(TOKEN_P, "", "urn:x|")) == {3}


@pytest.mark.parametrize("query", [("", ""), ("text", ""), ("", "urn:x|"), ("", "|a")])
def test_token_null_columns_in_mongo(coll, query):
    rows = [[("", None, "hemo")], [("", "a", None)], [("", "", None)], [("urn:x", None, None)]]
    check(coll, T, rows, T.parse(TOKEN_P, *query))


# ---- uri ------------------------------------------------------------------------------

URI_P = SimpleNamespace(code="url")
uris = st.builds(lambda scheme, segs, slash: scheme + "/".join(segs) + slash,
                 opt(["http://", "urn:", "", "http://"]),
                 st.lists(opt(["a", "b", "x.y", "$gt", "a.*", "(a+)+$", "", "\U0010ffff"]), max_size=3),
                 opt(["", "", "/"]))


@SETTINGS
@given(docs=st.lists(st.lists(uris, max_size=3), min_size=1, max_size=5),
       modifier=st.sampled_from(["", "below", "above"]), data=st.data())
def test_uri(coll, docs, modifier, data):
    stored = [u for values in docs for u in values]
    raw = data.draw(opt(stored) if stored and data.draw(st.booleans()) else uris)
    if data.draw(st.booleans()):
        raw = raw.rsplit("/", 1)[0]
    cond = U.parse(URI_P, modifier, raw.replace("\\", "\\\\"))
    check(coll, U, [U.rows([(u, "uri") for u in values], URI_P) for values in docs], cond)


# ---- reference ------------------------------------------------------------------------

BASE = "http://base/fhir"
REF_PARAMS = [SimpleNamespace(code="subject", targets=["Patient"]),
              SimpleNamespace(code="subject", targets=["Patient", "Group"])]
REFS = ["Patient/1", "Group/1", "Patient/2", f"{BASE}/Patient/1", "http://other/fhir/Patient/1",
        "urn:uuid:1", "1", "Patient/1/_history/2", "Foo/1", "Patient/$gt", "http://x/a.*", "$where",
        '{"$ne": null}', "(a+)+$"]


@SETTINGS
@given(docs=st.lists(st.lists(st.tuples(opt(REFS), st.booleans()), max_size=3), min_size=1, max_size=5),
       param=opt(REF_PARAMS), modifier=opt(["", "", "Patient", "Group"]), raw=opt(REFS))
def test_reference(coll, docs, param, modifier, raw):
    cond = parsed(R.parse, param, modifier, raw.replace("$", "\\$"), BASE)
    rows = [R.rows([({"reference": r} if as_dict else r, "Reference") for r, as_dict in values], param, BASE)
            for values in docs]
    check(coll, R, rows, cond)


# ---- number, date, quantity (the values and queries of their own tests) ---------------------

@SETTINGS
@given(docs=st.lists(st.lists(number_tests.resource_values, max_size=3), min_size=1, max_size=5),
       query=number_tests.queries)
def test_number(coll, docs, query):
    check(coll, N, [N.rows(values, number_tests.P) for values in docs], N.parse(number_tests.P, "", query))


@SETTINGS
@given(docs=st.lists(st.lists(date_tests.resource_values, max_size=3), min_size=1, max_size=5),
       query=date_tests.queries)
def test_date(coll, docs, query):
    check(coll, D, [D.rows(values, date_tests.P) for values in docs], D.parse(date_tests.P, "", query))


@settings(max_examples=100, deadline=None)
@given(docs=st.lists(st.lists(st.tuples(st.integers(D.MIN, D.MAX), st.integers(0, 10 ** 12)), max_size=3),
                     min_size=1, max_size=5),
       query=date_tests.queries)
def test_date_arbitrary_ranges(coll, docs, query):
    rows = [[(low, min(low + width, D.MAX)) for low, width in values] for values in docs]
    check(coll, D, rows, D.parse(date_tests.P, "", query))


@SETTINGS
@given(docs=st.lists(st.lists(quantity_tests.resource_values, max_size=3), min_size=1, max_size=5),
       query=quantity_tests.queries())
def test_quantity(coll, docs, query):
    check(coll, Q, [Q.rows(values, quantity_tests.P) for values in docs], Q.parse(quantity_tests.P, "", query))


def test_open_ends_are_infinite_doubles(coll):
    rows = [[(-math.inf, 5.0)], [(5.0, math.inf)], [(-math.inf, math.inf)], [(5.0, 5.0)]]
    for prefix in N.ranges.PREFIXES:
        check(coll, N, rows, N.parse(number_tests.P, "", prefix + "5"))
        check(coll, Q, [[("", "", "mg") + r + ("", None, None) for r in rs] for rs in rows],
              Q.parse(quantity_tests.P, "", prefix + "5||mg"))
        check(coll, Q, [[(UCUM, "g", "g") + r + ("kilogram", r[0] / 1000, r[1] / 1000) for r in rs] for rs in rows],
              Q.parse(quantity_tests.P, "", prefix + "5000|" + UCUM + "|mg"))


# ---- special (near): a bounding box, a superset of match() ------------------------------

NEAR_P = SimpleNamespace(code="near")


def destination(lat, lon, bearing, km):
    """The point `km` from (lat, lon) along `bearing` (degrees), on the same sphere as match()."""
    p1, l1, th, d = math.radians(lat), math.radians(lon), math.radians(bearing), km / SP.EARTH_KM
    p2 = math.asin(max(-1.0, min(1.0, math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(th))))
    l2 = l1 + math.atan2(math.sin(th) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 180) % 360 - 180


lats = st.one_of(opt([-90.0, -89.9999, -60.0, 0.0, 45.0, 89.9999, 90.0]), st.floats(-90, 90))
lons = st.one_of(opt([-180.0, -179.9999, 0.0, 179.9999, 180.0]), st.floats(-180, 180))
UNITS = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "[nmi_i]": 1.852}


@st.composite
def near_cases(draw):
    lat, lon = draw(lats), draw(lons)
    distance = draw(opt([0, 0.001, 1, 10, 100, 1000, 5000, 10007.5, 15000, 20015.1, 30000]))
    unit = draw(opt(list(UNITS)))
    cond = SP.parse(NEAR_P, "", f"{lat!r}|{lon!r}|{distance}|{unit}")
    km = distance * UNITS[unit]

    def point():
        kind = draw(st.integers(0, 3))
        if kind == 0:               # anywhere
            return draw(lats), draw(lons)
        if kind == 1:               # out of the usual ranges: still a point to haversine_km
            return draw(st.floats(-400, 400)), draw(st.floats(-1000, 1000))
        # on the circle, or a hair inside or outside it
        factor = draw(opt([1.0, 1 - 1e-12, 1 + 1e-12, 1 - 1e-7, 1 + 1e-7, 0.5, 0.999, 1.001]))
        return destination(lat, lon, draw(st.floats(0, 360)), km * factor)

    docs = draw(st.lists(st.lists(st.builds(point), max_size=3), min_size=1, max_size=5))
    return cond, docs


@settings(max_examples=200, deadline=None)
@given(case=near_cases())
def test_near_box_is_a_superset_of_match(coll, case):
    cond, docs = case
    got = found(coll, SP, docs, cond)
    want = expected(SP, docs, cond)
    assert want <= got, (cond, SP.mongo(cond), docs)


def found_by_store(coll, docs: list[list[tuple]], cond) -> set[int]:
    """The MongoDB store's own filter for near (mongo_query.near: the box and the exact test), over
    documents laid out as the store lays them out (mongo_layout.index_doc)."""
    coll.delete_many({})
    coll.insert_many([{"_id": i, "ix": index_doc({"special": [("Other.param", 0, *r) for r in docs[(i + 1) % len(docs)]]
                                                  + [(KEY, 0, *r) for r in rows]})}
                      for i, rows in enumerate(docs)])
    return {d["_id"] for d in coll.find(mongo_near(KEY, cond), {"_id": 1})}


def half_chord(cond, row) -> float:
    """sqrt(haversine), the quantity both match() and the store compare: well conditioned everywhere."""
    p1, p2 = math.radians(cond.lat), math.radians(row[0])
    dp, dl = p2 - p1, math.radians(row[1] - cond.lon)
    return math.sqrt(max(0.0, math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2))


@settings(max_examples=200, deadline=None)
@given(case=near_cases())
def test_store_near_is_exact(coll, case):
    """What the store's query finds is exactly what match() accepts: no recheck after it. Points
    within 1e-12 of the circle (in half-chord units: 13 micrometres on the Earth) may fall either
    way in floating point, for match() as for any other formula; they are left out."""
    cond, docs = case
    limit = math.sin(min(cond.km / (2 * SP.EARTH_KM), math.pi / 2))
    if any(abs(half_chord(cond, r) - limit) < 1e-12 for rows in docs for r in rows):
        reject()
    assert found_by_store(coll, docs, cond) == expected(SP, docs, cond), (cond, docs)


@pytest.mark.parametrize("query, inside, outside", [
    ("0|0|10|km", (0.06, 0.06), (0.08, 0.08)),                  # the corners of the box are outside
    ("0|179.99|10|km", (0.0, -179.995), (0.085, -179.925)),      # across the antimeridian
    ("89.99|0|10|km", (89.99, 170.0), (89.92, 90.0)),           # the pole within reach
    ("0|0|0|km", (0.0, 0.0), (0.0, 1e-7)),
    ("0|0|20015.1|km", (0.0, 179.99), (400.0, 1000.0)),         # (nearly) half the globe
])
def test_store_near_drops_the_corners_of_the_box(coll, query, inside, outside):
    cond = SP.parse(NEAR_P, "", query)
    assert SP.match(cond, inside)
    if not SP.match(cond, outside):
        assert found(coll, SP, [[inside], [outside]], cond) == {0, 1}       # the box alone keeps it
        assert found_by_store(coll, [[inside], [outside]], cond) == {0}
    else:
        assert found_by_store(coll, [[inside], [outside]], cond) == {0, 1}


@pytest.mark.parametrize("query, inside, outside", [
    ("0|0|10|km", (0.05, 0.05), (1.0, 1.0)),
    ("0|179.99|10|km", (0.0, -179.99), (0.0, -179.0)),          # across the antimeridian
    ("60|10|100|km", (60.5, 11.0), (60.0, 13.0)),
    ("89.99|0|10|km", (89.99, 170.0), (89.0, 0.0)),            # the pole within reach: any longitude
    ("52|5|1000|km", (55.0, 18.0), (52.0, 25.0)),
])
def test_near_box_prunes(coll, query, inside, outside):
    cond = SP.parse(NEAR_P, "", query)
    assert SP.match(cond, inside) and not SP.match(cond, outside)
    assert found(coll, SP, [[inside], [outside]], cond) == {0}


def test_near_box_is_wider_than_distance_over_cos_lat():
    """At 52°N a 2000 km circle reaches 30.1° of longitude east, north of its centre; the
    SQL box (distance / cos(lat): 29.2°) misses such a point."""
    cond = SP.parse(NEAR_P, "", "52|0|2000|km")
    lat, lon = max((destination(52, 0, b / 10, 1999.9) for b in range(0, 1800)), key=lambda p: p[1])
    assert lon > math.degrees(2000 / SP.EARTH_KM / math.cos(math.radians(52))) and SP.match(cond, (lat, lon))
    assert SP.mongo(cond)["$or"][0]["lon"]["$lte"] > lon


# ---- hostile values ---------------------------------------------------------------------

def _hostile_conds():
    for h in HOSTILE:
        e = h.replace("\\", "\\\\").replace("|", "\\|").replace("$", "\\$")
        for modifier in ("", "exact", "contains"):
            yield S, S.parse(STRING_P, modifier, e)
        yield T, T.parse(TOKEN_P, "", e)
        yield T, T.parse(TOKEN_P, "text", e)
        if h:
            yield T, T.parse(TOKEN_P, "", f"{e}|{e}")
            yield T, T.parse(TOKEN_P, "", f"{e}|")
            yield T, T.parse(TOKEN_P, "of-type", f"{e}|{e}|{e}")
            yield T, T.CodeIn(frozenset({(h, h), ("urn:x", h), (h, "a")}))
            yield R, R.parse(REF_PARAMS[1], "", e, BASE)
        for modifier in ("", "below", "above"):
            yield U, U.parse(URI_P, modifier, e)
        yield Q, Q.parse(quantity_tests.P, "", f"5|{e}|{e}")
        yield Q, Q.parse(quantity_tests.P, "", f"ne5||{e}")
        yield Q, Q.parse(quantity_tests.P, "", f"5|http://unitsofmeasure.org|{e}")
        if h:       # a canonical unit is never empty ("" is a row without one)
            yield Q, dataclasses.replace(Q.parse(quantity_tests.P, "", "5|http://unitsofmeasure.org|g"), canon=h)


def _rows_for(kind, h):
    """A row whose strings are exactly `h` (hit), and near misses."""
    near = [h + "x", "x" + h, h.upper(), h[:-1], "a", ""]
    if kind is S:
        return [(S.fold(s), s) for s in [h] + near]
    if kind is T:
        return [(s, s, s) for s in [h] + near] + [("", None, None), ("", h, None)]
    if kind is R:
        return [(None, None, h), ("Patient", h, None), ("Group", h, None)] + [(None, None, s) for s in near]
    if kind is U:
        return [(s,) for s in [h, h + "/x", h + "x"] + near]
    return [(s, s, s, 5.0, 5.0, "", None, None) for s in [h] + near] + [
        ("", "", s, 5.0, 5.0, s, 5.0, 5.0) for s in [h] + near]


@pytest.mark.parametrize("h", HOSTILE)
def test_hostile_values_are_plain_values(coll, h):
    for kind, cond in _hostile_conds():
        flt = kind.mongo(cond)
        assert_safe(kind, flt)
        for key in flt:
            assert key.startswith("$") or key in kind.COLUMNS
        docs = [[row] for row in _rows_for(kind, h)]
        check(coll, kind, docs, cond)


def test_hostile_values_match_literally(coll):
    docs = [[(S.fold(s), s)] for s in ['{"$ne": null}', "$where", "a.*", "(a+)+$", "$gt", "aaaa", "abc"]]
    for modifier, value, want in [("exact", '{"$ne": null}', {0}), ("contains", ".*", {2}), ("", "$", {1, 4}),
                                  ("contains", "a+", {3}), ("", "a.", {2}), ("contains", "$", {0, 1, 3, 4}),
                                  ("exact", "$gt", {4}), ("contains", "(a+)+$", {3}), ("", "(", {3})]:
        cond = S.parse(STRING_P, modifier, value.replace("$", "\\$"))
        assert expected(S, docs, cond) == want, (modifier, value)
        assert found(coll, S, docs, cond) == want, (modifier, value)


def test_the_walk_rejects_what_it_must():
    for bad in [{"$where": "1"}, {"code": {"$expr": {}}}, {"other": {"$eq": 1}}, {"code": {"$eq": {"$ne": None}}},
                {"code": {"$regex": "a.*"}}, {"code": "$gt"}, {"code": {"$in": [{"$gt": ""}]}}]:
        with pytest.raises(AssertionError):
            assert_safe(T, bad)
