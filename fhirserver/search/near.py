"""Distances for `near` searches (search.html#special, location.html#positional): the condition a
query carries, each match's great-circle distance in the unit asked (reported in
entry.search.extension as location-distance), and `_sort=near`, nearest first.

`_sort=near` orders by a value the index does not hold, so the matches within the distance are
read whole and sorted here: at most MAX_NEAR of them (past that the search asks for a smaller
distance: 400), which keeps the cost of one request bounded.
"""
from __future__ import annotations

from decimal import Decimal

from . import query as q
from .kinds.special_kind import UNITS_KM, Near, haversine_km

MAX_NEAR = 2000
DISTANCE_URL = "http://hl7.org/fhir/StructureDefinition/location-distance"
_UCUM = {"km": "km", "m": "m", "mi": "[mi_i]", "[mi_i]": "[mi_i]", "[nmi_i]": "[nmi_i]"}


def condition(query) -> Near | None:
    """The `near` of a query: a top-level clause whose one alternative is a near match."""
    for part in getattr(query, "parts", ()):
        alternatives = part.parts if isinstance(part, q.Or) else (part,)
        if len(alternatives) == 1 and isinstance(alternatives[0], q.Match) and isinstance(alternatives[0].cond, Near):
            return alternatives[0].cond
    return None


def distance(resource: dict, near: Near) -> float | None:
    """The resource's distance from the point, in the unit asked (None without a position)."""
    pos = resource.get("position") or {}
    lat, lon = pos.get("latitude"), pos.get("longitude")
    if not isinstance(lat, (int, float, Decimal)) or not isinstance(lon, (int, float, Decimal)):
        return None
    return haversine_km(near.lat, near.lon, float(lat), float(lon)) / UNITS_KM[near.unit]


def extension(value: float, near: Near) -> dict:
    unit = _UCUM[near.unit]
    return {"url": DISTANCE_URL, "valueDistance": {"value": round(value, 3 if near.unit != "m" else 0),
                                                   "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
