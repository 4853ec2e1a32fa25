"""On a standalone mongod (no transactions) the quality writes go with the unit's held write: it is
applied first, its counters right after, so the counters always agree with the resources stored,
even when the unit then fails (storage/mongo_quality.py)."""
from __future__ import annotations

import pytest

from fhirserver.interactions.common import new_id, prepare, store_new_version
from fhirserver.search import query as q
from fhirserver.storage.mongo_units import StandaloneUnits


@pytest.fixture(params=["mongo"])
def backend(request):
    """MongoDB only (mongomock), with the units of a single mongod."""
    return request.param


@pytest.fixture
def ctx(app):
    context = app.config["MEDPORT"]
    context.store.units = StandaloneUnits()      # as if talking to a single mongod (open_mongo picks it)
    return context


def _observation(ctx, tx, subject: str):
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/{subject}"}}
    return store_new_version(tx, prepare(ctx, "Observation", body), new_id(), "POST", None)


def test_the_counters_follow_the_held_write(ctx):
    with ctx.store.transaction() as tx:
        _observation(ctx, tx, "nobody")
    counts = {(d, k): n for _c, _t, d, k, n in ctx.store.quality_counts(type="Observation")}
    assert counts == {("total", ""): 1, ("conformance", "unchecked"): 1, ("no-uhid-subject", ""): 1}


def test_a_failed_unit_leaves_counters_that_agree_with_the_store(ctx):
    with pytest.raises(RuntimeError):
        with ctx.store.transaction() as tx:
            _observation(ctx, tx, "nobody")
            raise RuntimeError("refused after the write")
    stored = ctx.store.search("Observation", q.MATCH_ALL, limit=10).items
    total = sum(n for _c, _t, d, _k, n in ctx.store.quality_counts(type="Observation") if d == "total")
    assert total == len(stored)
