"""The hostile searches of security issue 12, sent to a real `medport serve` over HTTP: each is
answered (400, or a batch-response whose entries failed) within a generous time, and the server
keeps answering /fhir/metadata while eight such batches run at once. Limits: docs/search.md."""
from __future__ import annotations

import concurrent.futures
import json
import time

import pytest
import requests

from ._server import FHIR_JSON, JSON_HEADERS

WITHIN = 20     # seconds; the reported requests took 27.8 s, and minutes under concurrency

HOSTILE = [
    "Provenance?target.based-on.subject.name=x",
    "Observation?subject:Patient.link:Patient.link:Patient.link:Patient.name=x",
    "Patient?name=" + ",".join(["a"] * 496),
    "Patient?" + "&".join(["name=a"] * 1000),
    "Observation?focus.subject.name=x",
    "Patient?_has:Observation:subject:_has:Provenance:target:_has:Provenance:target:_has:Provenance:target:agent=x",
]


@pytest.fixture(scope="module")
def srv(module_server_factory, tmp_path_factory):
    return module_server_factory(tmp_path_factory.mktemp("search-cost") / "store.db")


def timed(call):
    started = time.monotonic()
    r = call()
    return r, time.monotonic() - started


@pytest.mark.parametrize("url", HOSTILE)
def test_each_hostile_search_is_refused_quickly(srv, url):
    r, took = timed(lambda: requests.get(f"{srv.base}/{url}", headers={"Accept": FHIR_JSON}, timeout=WITHIN + 10))
    assert took < WITHIN, took
    assert r.status_code == 400, r.text[:300]
    assert r.json()["issue"][0]["code"] == "too-costly"


def test_post_search_with_32_repeats_is_refused_quickly(srv):
    body = "&".join(["target.based-on.subject.name=x"] * 32)
    r, took = timed(lambda: requests.post(f"{srv.base}/Provenance/_search", data=body, timeout=WITHIN + 10,
                                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                                   "Accept": FHIR_JSON}))
    assert took < WITHIN and r.status_code == 400, (took, r.text[:300])


def _batch(srv):
    entries = [{"request": {"method": "GET", "url": "Provenance?target.based-on.subject.name=x"}}] * 120
    body = json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries})
    return timed(lambda: requests.post(srv.base, data=body, headers=JSON_HEADERS, timeout=120))


def test_metadata_answers_while_eight_hostile_batches_run(srv):
    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        batches = [pool.submit(_batch, srv) for _ in range(8)]
        meta, took = timed(lambda: requests.get(f"{srv.base}/metadata", headers={"Accept": FHIR_JSON},
                                                timeout=WITHIN + 10))
        assert meta.status_code == 200 and took < WITHIN, took
        for f in batches:
            r, took = f.result()
            assert took < WITHIN, took
            assert r.status_code == 200, r.text[:300]
            assert {e["response"]["status"][:3] for e in r.json()["entry"]} == {"400"}
