"""Hypothesis fuzzer of batch and transaction Bundles: random entries, methods, urls, references,
urn:uuid fullUrls, conditionals, JSON Patches, nested and oversized values; also hostile JSON text
(1e999, lone surrogates, >64-bit integers, duplicate keys, truncation). Every answer: no 5xx, no hang,
errors as OperationOutcome JSON; a refused transaction stores nothing."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ._budget import fuzz
from ._harness import store_state
from ._strategies import bundle, hostile_json_text, resource

FHIR_JSON = "application/fhir+json"


def _post_bundle(server, body: bytes, kind):
    before = store_state(server) if kind == "transaction" else None
    r = server.request("POST", "/fhir/", body=body, content_type=FHIR_JSON)
    if before is not None and r.status_code >= 400:
        after = store_state(server)
        assert after == before, (f"a refused transaction ({r.status_code}) changed the store: {before} -> {after}"
                                 f"\n  body: {body[:2000]!r}\n  answer: {r.get_data()[:500]!r}")
    return r


@fuzz(scale=2)
@given(bundle())
def test_batch_and_transaction(server, b):
    _post_bundle(server, json.dumps(b).encode("utf-8", "surrogatepass"), b.get("type"))


@fuzz(scale=2)
@given(bundle(kind="transaction"))
def test_transaction_all_or_nothing(server, b):
    r = _post_bundle(server, json.dumps(b).encode("utf-8", "surrogatepass"), "transaction")
    if r.status_code < 300:
        assert r.get_json().get("type") == "transaction-response", r.get_data()[:500]


@fuzz()
@given(st.data())
def test_hostile_json_bundle(server, data):
    b = data.draw(bundle(kind=data.draw(st.sampled_from(["batch", "transaction"]))))
    _post_bundle(server, data.draw(hostile_json_text(b)), b["type"])


@fuzz()
@given(st.data(), st.sampled_from(["POST", "PUT"]))
def test_hostile_json_resource(server, data, method):
    body = data.draw(resource())
    raw = data.draw(hostile_json_text(body))
    rtype = body["resourceType"]
    url = f"/fhir/{rtype}" if method == "POST" else f"/fhir/{rtype}/fuzz-{data.draw(st.integers(0, 20))}"
    server.request(method, url, body=raw, content_type=FHIR_JSON)
