"""search/extract_memo.py gives exactly extract()'s rows (same kinds, rows and order): on every AuditEvent
shape the BALP builder (audit_log/balp.py) makes, under two base URLs through one memo, on every HL7
example (as the store parses it, and as orjson does), and with a memo small enough to evict."""
from __future__ import annotations

import copy
import glob
import itertools
import os
import random

import orjson

from fhirserver import jsonio
from fhirserver.audit_log import balp
from fhirserver.search import extract_memo
from fhirserver.search.extract import _plans, _rows, extract
from fhirserver.search.kinds import reference_kind, token_kind

BASES = ("http://fhir.test/fhir", "https://other.test/r4")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "data", "hl7-examples", "*.json")
REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
BTG = {"coding": [{"system": REASON, "code": "BTG", "display": "break the glass"}]}


def actors(base: str) -> list[balp.Actor]:
    return [
        balp.Actor(),
        balp.Actor(client_id="app", address="10.0.0.1"),
        balp.Actor(client_id="app", user={"reference": "Practitioner/dr"}, alt_id="dr1", address="10.0.0.2",
                   purpose=[{"coding": [{"system": REASON, "code": "TREAT"}]}], organization="Organization/A"),
        balp.Actor(client_id="app", user={"reference": "Practitioner/er"}, alt_id="er", purpose=[BTG]),  # break-glass
        balp.Actor(client_id="app", user={"reference": f"{BASES[0]}/Practitioner/abs"}),   # local under BASES[0]
        balp.Actor(client_id="app", user={"identifier": {"system": f"{base}/sid/user", "value": "u1"}}),
        balp.Actor(client_id="portal", user={"reference": "Patient/p1"}, alt_id="p1", patient_context="p1",
                   confined=True),                                                   # patient-confined
        balp.Actor(client_id="portal", user={"reference": "RelatedPerson/rp"}, patient_context="p2", confined=True),
    ]


def interactions() -> list[balp.Interaction]:
    out = []
    for code in sorted(balp.ACTIONS) + ["vread", "history-instance"]:
        for status in (200, 201, 403, 404, 500):
            target = {"read": "Patient/p1", "vread": "Observation/o1/_history/2", "create": "Observation/o2",
                      "history-instance": "Patient/p1"}.get(code)
            query = "Observation?patient=p1&_count=5" if code.startswith("search") else None
            operation = "$everything" if code == "operation" else None
            out.append(balp.Interaction(code, status, target, query, operation, "refused" if status == 403 else None))
    out.append(balp.Interaction("create", 200, "Observation/o3", done=False))     # a conditional create that matched
    out.append(balp.Interaction("search-type", 200, None, "x" * 5000))              # a cut query
    return out


def balp_events(base: str) -> list[dict]:
    out = []
    for n, (actor, what, patient, request_id) in enumerate(itertools.product(
            actors(base), interactions(), (None, "p1", "p2"), (None, "req-1"))):
        event = balp.event(base, actor, what, patient, request_id, f"2026-01-0{1 + n % 3}T10:00:00.{n % 1000:03d}Z")
        event["id"] = f"ev-{n}"              # as journal.append gives it
        out.append(event)
    for n, (subtype, status, about, patient) in enumerate(itertools.product(
            (balp.LOGIN, balp.LOGOUT, (balp.AUTH_EVENTS, "token-issued", "Access token issued")), (200, 401),
            (None, (f"{base}/sid/client", "app")), (None, "p1"))):
        event = balp.security_event(base, actors(base)[2], balp.USER_AUTHENTICATION, subtype, status=status,
                                    about=about, patient=patient, request_id="req-2")
        event["id"] = f"sec-{n}"
        out.append(event)
    return out


def assert_same(memo, resources, base: str) -> None:
    for resource in resources:
        expected = extract(resource, base)
        got = memo.extract(resource, base)
        assert list(got.items()) == list(expected.items()), resource.get("id")


def test_every_balp_event_under_two_bases():
    memo = extract_memo.ExtractMemo()
    for _round in range(2):
        for base in BASES:
            for events_base in BASES:           # an event's own URLs need not be the drain's base
                assert_same(memo, balp_events(events_base), base)
    assert memo.hits > 100_000              # the memoised rows were read, not only made


def test_the_journal_body_and_a_stored_one():
    memo = extract_memo.ExtractMemo()
    for event in balp_events(BASES[0])[:400]:
        body = jsonio.dumps(event)
        stamped = {**jsonio.loads_stored(body), "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"}}
        assert_same(memo, [orjson.loads(body), jsonio.loads_stored(body), stamped], BASES[0])


def test_every_hl7_example_parsed_both_ways():
    memo = extract_memo.ExtractMemo()
    for path in sorted(glob.glob(EXAMPLES)):
        with open(path, "rb") as f:
            body = f.read()
        for resource in (jsonio.loads_stored(body), orjson.loads(body)):   # FhirDecimal values, and floats
            if isinstance(resource, dict) and "resourceType" in resource:
                assert_same(memo, [resource, resource], BASES[0])


def test_a_small_memo_evicts_and_still_agrees():
    memo = extract_memo.ExtractMemo(size=3, seen=64)
    events = balp_events(BASES[0])[::7]
    assert_same(memo, [e for e in events for _twice in (1, 2)], BASES[0])     # full: kept at a second sighting
    assert len(memo._parts) == 3 and len(memo._seen) <= 64


def test_what_a_caller_does_to_the_rows_does_not_reach_the_memo():
    memo = extract_memo.ExtractMemo()
    event = balp_events(BASES[0])[0]
    first = memo.extract(event, BASES[0])
    for rows in first.values():
        rows.clear()
    assert list(memo.extract(event, BASES[0]).items()) == list(extract(event, BASES[0]).items())


def test_which_parameters_are_made_item_by_item():
    paths = {p.key: extract_memo.item_paths(p, "AuditEvent") for p in _plans("AuditEvent")}
    assert paths["AuditEvent.agent"] and paths["AuditEvent.type"] and paths["AuditEvent._custodian"]
    assert [steps[0] for steps in paths["AuditEvent.patient"]] == [("child", "agent"), ("child", "entity")]
    assert extract_memo._layout("Observation") is None      # composites: extract() itself
    layout = extract_memo._layout("Patient")
    plain = {p.key for p, refs in layout.order if refs is None}
    assert {p.key for p in _plans("Patient") if p.kind not in extract_memo.ELEMENTWISE} <= plain


def test_every_elementwise_kind_makes_rows_value_by_value_and_drops_repeats():
    """What the memo rests on: a kind's rows of several values are the rows of each value, one after
    another, repeats dropped (so the rows of a list's items can be made item by item)."""
    checked = set()
    for path in sorted(glob.glob(EXAMPLES)):
        with open(path, "rb") as f:
            resource = jsonio.loads_stored(f.read())
        if not isinstance(resource, dict) or "resourceType" not in resource:
            continue
        for p in _plans(resource["resourceType"]):
            if p.kind not in extract_memo.ELEMENTWISE or p.kind == "composite":
                continue
            values = p.run(resource)
            if not values:
                continue
            for rows_of in _row_makers(p):
                each = [r for v in values + values[::-1] for r in rows_of([v])]
                assert rows_of(values + values[::-1]) == list(dict.fromkeys(each)), (p.key, path)
            checked.add(p.kind)
    assert checked == extract_memo.ELEMENTWISE


def _row_makers(p):
    makers = [lambda values: _rows(p.param, values, BASES[0])]
    if p.kind == "reference":
        makers.append(reference_kind.identifier_rows)
    if p.kind == "token" and p.param.code == "identifier":
        makers.append(token_kind.of_type_rows)
    return makers


def test_items_alike_in_several_lists_reordered_and_repeated():
    memo = extract_memo.ExtractMemo()
    rng = random.Random(7)
    events = balp_events(BASES[0])
    for _n in range(3000):
        event = copy.deepcopy(rng.choice(events))
        donor = rng.choice(events)
        for k in ("entity", "agent", "subtype"):
            items = list(event.get(k) or []) + list(donor.get(k) or [])
            rng.shuffle(items)
            event[k] = items[:rng.randrange(0, 5)] * rng.choice((1, 1, 2))      # none, some, repeated
            if not event[k] and rng.random() < 0.5:
                del event[k]
        if rng.random() < 0.1:
            event["entity"] = (event.get("entity") or [{}])[0]                  # not a list
        assert_same(memo, [event], BASES[0])


def test_a_choice_elements_typed_key_is_extracted_plainly():
    memo = extract_memo.ExtractMemo()
    event = balp_events(BASES[0])[0]
    event.pop("entity", None)       # entity is a choice stem elsewhere in R4: extract() reads entityReference
    event["entityReference"] = {"what": {"reference": "Patient/p9"}, "type": {"code": "1"}}
    assert_same(memo, [event, event], BASES[0])
    assert extract(event, BASES[0])["reference"]            # there are rows to get wrong


def test_a_contained_target_is_read_from_the_root():
    memo = extract_memo.ExtractMemo()
    event = balp_events(BASES[0])[0]
    event["entity"] = [{"what": {"reference": "#who"}}]
    for contained_type in ("Patient", "Device", "Patient"):         # the same entity, another target
        event["contained"] = [{"resourceType": contained_type, "id": "who"}]
        assert_same(memo, [event], BASES[0])


def test_items_seen_once_are_not_remembered_once_the_memo_is_full_but_agree():
    memo = extract_memo.ExtractMemo(size=64)
    event = balp_events(BASES[0])[0]
    assert_same(memo, balp_events(BASES[1])[:200], BASES[0])       # the memo fills up
    assert len(memo._parts) == 64
    recorded = set()
    for n in range(500):
        event["recorded"] = f"2026-01-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z"
        recorded.add(orjson.dumps(event["recorded"]))
        assert_same(memo, [event], BASES[0])
    assert not [k for k in memo._parts if k[3] in recorded]
    assert_same(memo, [event], BASES[0])                            # seen twice: remembered
    assert [k[3] for k in memo._parts if k[3] in recorded] == [orjson.dumps(event["recorded"])]
    assert len(memo._parts) == 64 and len(memo._seen) <= memo.seen


def test_large_items_are_not_kept():
    memo = extract_memo.ExtractMemo()
    event = balp.event(BASES[0], balp.Actor(), balp.Interaction("search-type", 200, None, "q=" + "x" * 6000), None, "r")
    assert_same(memo, [event, event, event], BASES[0])
    assert memo._parts and all(len(key[3]) <= extract_memo.MAX_BYTES for key in memo._parts)
