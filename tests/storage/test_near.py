"""`near` on every store is the exact great-circle distance (search.html#special): points in the
corners of the bounding box both stores narrow with are not near (issue 13.6: the MongoDB store
returned them)."""
from __future__ import annotations

import pytest

from fhirserver.search import query as q
from fhirserver.search.kinds import special_kind
from fhirserver.search.registry import all_params
from fhirserver.storage import open_store
from fhirserver.storage.base import Write

NEAR = all_params()["Location"]["near"]


@pytest.fixture
def store(settings):
    s = open_store(settings)
    yield s
    s.close()


def location(store, id, lat, lon):
    with store.transaction() as tx:
        tx.write(Write("Location", id, 1, "2026-01-01T00:00:00.000000Z", "PUT", b'{"resourceType":"Location"}',
                       {"special": [(NEAR.key, 0, lat, lon)]}))


@pytest.mark.parametrize("query, inside, outside", [
    ("0|0|10|km", (0.06, 0.06), (0.08, 0.08)),            # 9.4 km and 12.6 km from the centre
    ("52|5|100|km", (52.6, 5.9), (52.8, 6.3)),
    ("0|179.99|10|km", (0.0, -179.995), (0.085, -179.925)),
])
def test_near_finds_exactly_the_points_within_the_distance(store, query, inside, outside):
    cond = special_kind.parse(NEAR, "", query)
    assert special_kind.match(cond, inside) and not special_kind.match(cond, outside)
    location(store, "in", *inside)
    location(store, "out", *outside)
    page = store.search("Location", q.Match("special", NEAR.key, cond))
    assert [v.id for v in page.items] == ["in"] and page.total == 1
    # the same through a negation and inside a transaction (conditional interactions)
    assert [v.id for v in store.search("Location", q.Not(q.Match("special", NEAR.key, cond))).items] == ["out"]
    with store.transaction() as tx:
        assert [v.id for v in tx.search("Location", q.Match("special", NEAR.key, cond), 10)] == ["in"]
