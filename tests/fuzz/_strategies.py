"""Hypothesis strategies of hostile FHIR input: search strings built from the real search parameter
registry (fhirserver/search/registry.py), and batch/transaction Bundles."""
from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote

from hypothesis import strategies as st

from fhirserver.definitions import resource_types
from fhirserver.search.registry import params_for
from fhirserver.search.results import RESULT_PARAMS

# the types the seeded server holds (tests/smart_auth/_tokens.seed), first; then any other
SEEDED_TYPES = ["Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "DiagnosticReport",
                "Provenance", "RelatedPerson", "Organization", "Practitioner", "Binary"]
ALL_TYPES = sorted(resource_types())
SEEDED_IDS = ["asha", "ravi", "org-city", "prac-1"]
NEW_IDS = ["new-1", "new-2", "new-3"]
KNOWN_TYPES = ["Patient", "Observation", "Encounter", "Binary"]       # the types Bundle entries mostly write

MODIFIERS = ["missing", "exact", "contains", "text", "not", "above", "below", "in", "not-in", "of-type",
             "identifier", "iterate", "recurse", "Patient", "Observation", "Foo", "", "not:not", "xyz"]
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "EQ", "zz"]
HOSTILE_TEXT = ["\\", "\\,", "\\|", "\\$", "a\\", ",", ",,", "|", "||", "$", "%", "%zz", "%00", "\x00", "\u0000",
                "\ud7ff", "\ufffd", "\U0001f600", "é", "ß", "İ", "\u202e", " ", "\t", "\n", "'", '"', "--", ";",
                "*", "?", "_", "%%", "\\\\", "null", "true", "NaN", "Infinity", "-0", "1e999", "..", "/",
                "Patient/", "urn:uuid:", "http://", "#", "&", "="]
HUGE_NUMBERS = ["9" * 30, "-" + "9" * 30, "1e999", "-1e999", "1e-999", "18446744073709551616",
                "9223372036854775808", "-9223372036854775809", "0." + "0" * 400 + "1", "1" * 5000, "1.5e308",
                "2.2250738585072014e-308", "0x10", "1_000", "١٢٣", "NaN", "inf", "-inf", "+1", "00001"]


resource_type = st.integers(0, 9).flatmap(lambda n: st.sampled_from(ALL_TYPES if n < 3 else SEEDED_TYPES))

hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE_TEXT), st.text(max_size=5)),
)
plain_text = st.one_of(st.sampled_from(["Sharma", "Kumar", "Asha", "sha", "final", "718-7", "asha", "ravi"]),
                       st.from_regex(r"[A-Za-z0-9\-\.]{1,12}", fullmatch=True))


@st.composite
def _mostly(draw, plain, hostile, hostile_in_10: int = 3):
    """`plain` most of the time (so that searches get past the parser and run), else `hostile`."""
    return draw(hostile if draw(st.integers(0, 9)) < hostile_in_10 else plain)


text = _mostly(plain_text, hostile_text)

number = st.one_of(
    st.integers().map(str), st.integers(min_value=-(2 ** 200), max_value=2 ** 200).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(HUGE_NUMBERS),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)

date = st.one_of(
    st.dates().map(str), st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2020", "2020-13", "2020-02-30", "0000-01-01", "9999-12-31T23:59:60Z", "99999",
                     "-2020", "2020-01-01T25:00", "2020-01-01T10:00:00+99:00", "2020-01-01T10:00:00.123456789Z",
                     "1970", "2038-01-19T03:14:08Z", "2020-01-01T", "T10:00"]),
    st.from_regex(r"[0-9\-T:\.Z+]{1,30}", fullmatch=True),
)

token = st.one_of(
    text, st.builds(lambda s, c: f"{s}|{c}", text, text), st.builds(lambda c: f"|{c}", text),
    st.builds(lambda s: f"{s}|", text), st.sampled_from(["http://loinc.org|718-7", "http://loinc.org|",
                                                         "|asha", "http://hospital.test/mrn|MRN-ASHA-001"]),
)

quantity = st.builds(lambda p, n, s, c: f"{p}{n}|{s}|{c}", st.sampled_from(PREFIXES), number,
                     st.sampled_from(["", "http://unitsofmeasure.org", "x"]), st.sampled_from(["", "mg", "g/dL", "%"]))

reference = st.one_of(
    st.builds(lambda t, i: f"{t}/{i}", resource_type, st.one_of(st.sampled_from(SEEDED_IDS), text)),
    st.sampled_from(SEEDED_IDS), text,
    st.builds(lambda t, i: f"http://fhir.test/fhir/{t}/{i}", resource_type, st.sampled_from(SEEDED_IDS)),
    st.builds(lambda t, i, v: f"{t}/{i}/_history/{v}", resource_type, st.sampled_from(SEEDED_IDS), number),
    st.just("urn:uuid:" + str(uuid.UUID(int=7))),
)


def _value_for(kind: str):
    return {
        "number": st.builds(lambda p, n: p + n, st.sampled_from(PREFIXES), number),
        "date": st.builds(lambda p, d: p + d, st.sampled_from(PREFIXES), date),
        "quantity": quantity,
        "token": token,
        "reference": reference,
        "composite": st.builds(lambda a, b: f"{a}${b}", token, st.one_of(number, quantity, token)),
    }.get(kind, text)


any_value = st.one_of(text, number, date, token, quantity, reference,
                      st.builds(lambda p, n: p + n, st.sampled_from(PREFIXES), number))


def _values(kind: str):
    """One value, or several with commas (OR), sometimes with an escaped comma."""
    v = _mostly(_value_for(kind), any_value, 2)
    return st.one_of(v, st.lists(v, min_size=2, max_size=4).map(",".join),
                     st.lists(v, min_size=2, max_size=3).map("\\,".join))


@st.composite
def param_name(draw, rtype: str, depth: int = 0):
    """A parameter name of `rtype`: real codes with modifiers, chains (subject:Patient.name), _has
    (reverse chains, nested), and some unknown names."""
    params = params_for(rtype)
    codes = sorted(params) or ["_id"]
    choice = draw(st.integers(0, 9))
    if choice <= 3 or depth >= 6:
        code = draw(st.sampled_from(codes))
        if draw(st.integers(0, 3)):
            return code, params.get(code).kind if code in params else "string"
        return f"{code}:{draw(st.sampled_from(MODIFIERS))}", params.get(code).kind if code in params else "string"
    if choice <= 5:       # chain: ref[:Type].name[.name...]
        refs = [c for c, p in params.items() if p.kind == "reference"] or codes
        head = draw(st.sampled_from(sorted(refs)))
        targets = (params[head].targets if head in params else ()) or tuple(SEEDED_TYPES)
        target = draw(st.sampled_from(sorted(targets)))
        typed = f"{head}:{target}" if draw(st.booleans()) else head
        rest, kind = draw(param_name(target, depth + 1))
        return f"{typed}.{rest}", kind
    if choice <= 7:       # _has:Type:ref:name (nested _has too)
        other = draw(st.sampled_from(SEEDED_TYPES))
        refs = sorted(c for c, p in params_for(other).items() if p.kind == "reference") or ["subject"]
        rest, kind = draw(param_name(other, depth + 1))
        return f"_has:{other}:{draw(st.sampled_from(refs))}:{rest}", kind
    if choice == 8 or draw(st.booleans()):
        return draw(st.sampled_from(sorted(RESULT_PARAMS) + ["_type", "_list", "_contained", "_containedType",
                                                              "_query", "_filter", "_text", "_content"])), "result"
    return draw(text), "string"


def _result_value(name: str):
    if name in ("_count",):
        return st.one_of(number, st.sampled_from(["0", "1", "1000", "1001"]))
    if name == "_cursor":
        return st.one_of(number, text, st.sampled_from(HUGE_NUMBERS), st.binary(max_size=40).map(
            lambda b: base64.urlsafe_b64encode(b).decode()))
    if name in ("_include", "_revinclude"):
        return st.one_of(st.builds(lambda a, b, c: f"{a}:{b}" + (f":{c}" if c else ""), st.sampled_from(
            SEEDED_TYPES + ["*"]), st.sampled_from(["subject", "patient", "*", "encounter", "result", "x"]),
            st.sampled_from(["", "Patient", "Organization", "Foo"])), text)
    if name == "_sort":
        return st.lists(st.builds(lambda s, n: s + n, st.sampled_from(["", "-"]),
                                  st.sampled_from(["_id", "_lastUpdated", "date", "name", "code", "value-quantity",
                                                   "subject", "x", ""])), min_size=1, max_size=4).map(",".join)
    if name == "_type":
        return st.lists(resource_type, min_size=1, max_size=4).map(",".join)
    if name in ("_summary", "_total", "_elements"):
        return st.one_of(st.sampled_from(["true", "false", "text", "data", "count", "none", "estimate", "accurate",
                                          "id,meta", "name", "*"]), text)
    return any_value


@st.composite
def search_params(draw, rtype: str, max_size: int = 6):
    """A list of (name, value) pairs for a search on `rtype` (mostly short: one bad pair refuses them all)."""
    out = []
    for _ in range(min(draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))):
        name, kind = draw(param_name(rtype))
        if kind == "result":
            bare = name.split(":")[0]
            value = draw(_result_value(bare))
            if bare in ("_include", "_revinclude") and draw(st.booleans()):
                name = f"{bare}:{draw(st.sampled_from(['iterate', 'recurse', 'x']))}"
        elif name.endswith(":missing"):
            value = draw(st.one_of(st.sampled_from(["true", "false"]), text))
        else:
            value = draw(_values(kind))
        out.append((name, value))
    return out


def encode(params, raw: bool = False) -> str:
    """The query string: percent-encoded, or (raw) as typed, leaving %-escapes and '+' for the server."""
    if raw:
        return "&".join(f"{quote(n, safe=':.$_-|,%+')}={quote(v, safe=':.$_-|,%+/')}" for n, v in params)
    return "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in params)


# ---- Bundles ------------------------------------------------------------------------------------

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "get", "OPTIONS", "", "TRACE"]
FULL_URLS = [f"urn:uuid:{uuid.UUID(int=i)}" for i in range(1, 5)] + ["urn:uuid:not-a-uuid", "Patient/asha",
                                                                      "http://fhir.test/fhir/Patient/new-1",
                                                                      "urn:oid:1.2.3", ""]


def _hostile_value():
    """Oversized and nested values where a resource's fields go."""
    return st.one_of(
        st.sampled_from(["x" * 70000, "\ud800", "\udfff", "\x00", "", " ", "\U0001f600" * 1000]),
        st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
        st.floats(),
        st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), text),
                     lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(text, c, max_size=3)),
                     max_leaves=12),
        st.integers(20, 120).map(lambda n: json.loads("[" * n + "]" * n)),
        st.integers(20, 120).map(lambda n: json.loads('{"a":' * n + "1" + "}" * n)),
    )


@st.composite
def reference_value(draw):
    return draw(st.one_of(st.sampled_from(FULL_URLS), reference,
                          st.sampled_from(["Patient?identifier=http://hospital.test/mrn|MRN-ASHA-001",
                                           "Patient?name=Sharma", "Patient?", "Patient?_id=asha,ravi",
                                           "Patient?foo=bar", "#contained", "Patient/asha/_history/1"])))


@st.composite
def resource(draw, rtype: str | None = None):
    rtype = rtype or draw(st.one_of(st.sampled_from(["Patient", "Observation", "Encounter", "Binary"]),
                                    resource_type))
    body = {"resourceType": rtype}
    if draw(st.integers(0, 3)) == 0:
        body["id"] = draw(st.one_of(st.sampled_from(SEEDED_IDS + NEW_IDS), text))
    if rtype == "Patient":
        body["name"] = [{"family": draw(text), "given": [draw(text)]}]
        if draw(st.booleans()):
            body["managingOrganization"] = {"reference": draw(reference_value())}
    elif rtype == "Observation":
        body.update({"status": draw(st.sampled_from(["final", "final", "bogus"])), "code": {"text": draw(text)},
                     "subject": {"reference": draw(reference_value())}})
        if draw(st.booleans()):
            body["valueQuantity"] = {"value": draw(st.one_of(st.integers(), st.floats(allow_nan=False,
                                                                                      allow_infinity=False))),
                                     "unit": "mg"}
        if draw(st.booleans()):
            body["derivedFrom"] = [{"reference": draw(reference_value())} for _ in range(draw(st.integers(0, 3)))]
    elif rtype == "Encounter":
        body.update({"status": "finished", "class": {"code": "AMB"},
                     "subject": {"reference": draw(reference_value())}})
    elif rtype == "Binary":
        body.update({"contentType": draw(st.sampled_from(["text/plain", "application/json-patch+json"])),
                     "data": draw(st.one_of(st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
                                            text))})
    for _ in range(draw(st.integers(-4, 2))):       # hostile values, now and then, in known and unknown elements
        body[draw(st.sampled_from(["text", "meta", "extension", "contained", "name", "identifier", "subject",
                                   "birthDate", "valueQuantity", "zz", "_birthDate"]))] = draw(_hostile_value())
    return body


def _patch_binary(draw):
    ops = draw(st.lists(st.fixed_dictionaries({
        "op": st.sampled_from(["add", "replace", "remove", "copy", "move", "test", "bogus"]),
        "path": st.sampled_from(["/name", "/name/0", "/name/-", "/id", "/resourceType", "/meta/versionId", "",
                                 "/birthDate", "/a/b/c", "/~1", "/name/99999999999999999999"]),
        "value": st.one_of(text, st.integers(), st.just([{"family": "X"}]), st.none()),
        "from": st.sampled_from(["/name", "/", "", "/id"])}), max_size=4))
    return {"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(ops).encode()).decode()}


@st.composite
def _coherent_request(draw):
    """A method with a url that fits it (so that most entries get past the shape checks)."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]))
    rtype = draw(st.sampled_from(KNOWN_TYPES))
    ident = draw(st.sampled_from(SEEDED_IDS + NEW_IDS))
    criteria = draw(search_params("Patient" if rtype == "Patient" else rtype, max_size=2))
    if method == "POST":
        return method, rtype
    if method in ("PUT", "DELETE", "PATCH"):
        return method, draw(st.sampled_from([f"{rtype}/{ident}", f"{rtype}?{encode(criteria)}"]))
    return method, draw(st.sampled_from([f"{rtype}/{ident}", f"{rtype}?{encode(criteria)}", f"{rtype}/{ident}/_history",
                                         f"{rtype}/{ident}/_history/1", "_history?_count=2", "metadata"]))


@st.composite
def _chaotic_request(draw):
    method = draw(st.sampled_from(METHODS))
    rtype = draw(st.sampled_from(KNOWN_TYPES + ["Foo", "metadata"]))
    url = draw(st.one_of(
        st.just(rtype),
        st.builds(lambda i: f"{rtype}/{i}", st.one_of(st.sampled_from(SEEDED_IDS + NEW_IDS), text)),
        st.builds(lambda q: f"{rtype}?{encode(q)}", search_params("Patient", max_size=2)),
        st.builds(lambda i, v: f"{rtype}/{i}/_history/{v}", st.sampled_from(SEEDED_IDS), number),
        st.sampled_from(["_history", "Patient/_history", "Patient/asha/_history", "$validate", "Patient/$validate",
                         "Patient/asha/$everything", "/Patient", "http://fhir.test/fhir/Patient/asha", "?",
                         "Patient/asha/Observation", "Patient//x", "Patient?_count=" + "9" * 30,
                         "Patient/asha/_history/" + "9" * 30, "_history?_cursor=" + "9" * 40]),
        text,
    ))
    return method, url


@st.composite
def bundle_entry(draw):
    method, url = draw(_coherent_request() if draw(st.integers(0, 9)) < 7 else _chaotic_request())
    entry: dict = {"request": {"method": method, "url": url}}
    if draw(st.integers(0, 3)) > 0:
        entry["fullUrl"] = draw(st.sampled_from(FULL_URLS))
    if method.upper() == "PATCH" and draw(st.integers(0, 3)):
        entry["resource"] = _patch_binary(draw)
    elif method.upper() in ("POST", "PUT") or draw(st.integers(0, 4)) == 0:
        bare = url.split("?")[0].split("/")[0]
        body = draw(resource(bare if bare in KNOWN_TYPES else None))
        parts = url.split("?")[0].split("/")
        if method == "PUT" and len(parts) == 2 and draw(st.integers(0, 3)):
            body["id"] = parts[1]
        entry["resource"] = body
    for key in ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"):
        if draw(st.integers(0, 6)) == 0:
            entry["request"][key] = draw(st.one_of(
                st.sampled_from(['W/"1"', '"1"', "*", 'W/"' + "9" * 30 + '"', "identifier=x|y", "name=Sharma",
                                 "Sat, 01 Jan 2000 00:00:00 GMT"]), text, st.integers()))
    if draw(st.integers(0, 10)) == 0:
        entry[draw(st.sampled_from(["request", "resource", "fullUrl", "response"]))] = draw(_hostile_value())
    return entry


@st.composite
def bundle(draw, kind=None):
    body = {"resourceType": "Bundle",
            "type": kind or draw(st.sampled_from(["batch", "transaction", "transaction", "batch", "collection",
                                                  "searchset", ""]))}
    body["entry"] = draw(st.lists(bundle_entry(), max_size=6))
    if draw(st.integers(0, 10)) == 0:
        body["entry"] = draw(_hostile_value())
    return body


HOSTILE_JSON = ["1e999", "-1e999", "123456789012345678901234567890", "-9223372036854775809",
                "18446744073709551616", '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', "NaN", "Infinity", "1.0e-400",
                "0." + "0" * 500 + "1", "9" * 5000]


@st.composite
def hostile_json_text(draw, value):
    """`value` as JSON text, then mutated: a value replaced by a hostile number or escape, a duplicate
    key, or truncated."""
    text_ = json.dumps(value)
    how = draw(st.integers(0, 3))
    if how == 0:        # replace one scalar value
        spots = [i for i, ch in enumerate(text_) if ch == ":"]
        if spots:
            i = draw(st.sampled_from(spots))
            end = i + 1
            while end < len(text_) and text_[end] not in ",}]":
                if text_[end] in "[{":
                    break
                end += 1
            if end < len(text_) and text_[end] in ",}]":
                text_ = text_[:i + 1] + " " + draw(st.sampled_from(HOSTILE_JSON)) + text_[end:]
    elif how == 1 and text_.startswith("{"):     # duplicate key
        key = draw(st.sampled_from(["resourceType", "type", "entry", "id"]))
        text_ = "{" + json.dumps(key) + ": " + draw(st.sampled_from(['"Bundle"', '"Patient"', "[]", "null",
                                                                       '"transaction"', "1e999"])) + ", " + text_[1:]
    elif how == 2:
        text_ = text_[:draw(st.integers(0, max(0, len(text_) - 1)))]
    return text_.encode("utf-8", "surrogatepass")
