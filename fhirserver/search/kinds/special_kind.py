"""special: Location `near` (search.html#special, location.html#positional):
near=[latitude]|[longitude]|[distance]|[units], default 10 km. Rows are (lat, lon).
SQL narrows with a bounding box on the index; the exact great-circle distance is
checked with the haversine formula (a SQL function registered by the store).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import BadRequest
from ..parse_util import split_unescaped, unescape

COLUMNS = ("lat", "lon")
LOOKUP = [("lat", "lon")]   # store indexes: (param, *cols)
SORT_COLUMNS = {"asc": "lat", "desc": "lat"}
EARTH_KM = 6371.0088
UNITS_KM = {"km": 1.0, "[mi_i]": 1.609344, "mi": 1.609344, "m": 0.001, "[nmi_i]": 1.852}


@dataclass(frozen=True)
class Near:
    lat: float
    lon: float
    km: float
    unit: str = "km"        # as asked: distances are reported in it (search/near.py)


def rows(values, param) -> list[tuple]:
    out = []
    for value, _typ in values:
        if isinstance(value, dict) and isinstance(value.get("latitude"), (int, float)) \
                and isinstance(value.get("longitude"), (int, float)):
            out.append((float(value["latitude"]), float(value["longitude"])))
    return out


def parse(param, modifier: str, raw: str):
    if modifier:
        raise BadRequest(f"Unknown modifier :{modifier} for '{param.code}'")
    parts = [unescape(p) for p in split_unescaped(raw, "|")]
    try:
        lat, lon = float(parts[0]), float(parts[1])
        distance = float(parts[2]) if len(parts) > 2 and parts[2] else 10.0
    except (ValueError, IndexError):
        raise BadRequest(f"near needs latitude|longitude[|distance[|units]], got {raw!r}") from None
    unit = parts[3] if len(parts) > 3 and parts[3] else "km"
    if unit not in UNITS_KM:
        raise BadRequest(f"Unknown distance unit {unit!r} for near: use km, m, [mi_i] or [nmi_i]")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not distance >= 0:     # NaN too
        raise BadRequest(f"near coordinates or distance out of range: {raw!r}")
    return Near(lat, lon, distance * UNITS_KM[unit], unit)


def haversine_km(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def _box(c: Near):
    """The circle's bounding box; its widest longitude lies poleward of the centre, so the span is
    asin(sin d / cos lat), not d / cos lat (too narrow for large circles)."""
    d = c.km / EARTH_KM
    dlat = math.degrees(d) + _BOX_MARGIN
    cos = math.cos(math.radians(c.lat))
    ratio = math.sin(min(d, math.pi / 2)) / cos if cos > 1e-9 else 2.0
    dlon = 180.0 if ratio >= 1 or abs(c.lat) + dlat >= 90 else math.degrees(math.asin(ratio)) + _BOX_MARGIN
    return c.lat - dlat, c.lat + dlat, c.lon - dlon, c.lon + dlon


def sql(cond, a: str):
    lat0, lat1, lon0, lon1 = _box(cond)
    lon_clause = f"{a}.lon BETWEEN ? AND ?" if lon1 - lon0 < 360 and lon0 >= -180 and lon1 <= 180 else "1"
    args = [lat0, lat1] + ([lon0, lon1] if lon_clause != "1" else [])
    # rows off the globe's ranges (valid decimals all the same) are left to the exact distance test
    return (f"((({a}.lat BETWEEN ? AND ? AND {lon_clause}) OR {a}.lat NOT BETWEEN -90 AND 90 "
            f"OR {a}.lon NOT BETWEEN -180 AND 180) AND haversine_km(?, ?, {a}.lat, {a}.lon) <= ?)",
            args + [cond.lat, cond.lon, cond.km])


def match(cond, row) -> bool:
    return haversine_km(cond.lat, cond.lon, row[0], row[1]) <= cond.km


_BOX_MARGIN = 1e-6      # degrees (~11 cm): covers rounding in the bounds and in haversine_km


def mongo(cond) -> dict:
    """A bounding box for `near` as a MongoDB filter on one index element (fields lat, lon):
    a SUPERSET of match(), never exact. The great-circle distance needs arithmetic on the
    fields, i.e. $expr, which MongoDB refuses inside $elemMatch ("$expr can only be applied
    to the top-level document") and mongomock cannot evaluate ($sin, $cos, $asin); so the
    caller must check match() on the rows of each resource found.

    Every row within cond.km is inside the box: |dlat| <= the angular distance, and, when
    neither pole is within reach, |dlon| <= asin(sin(distance) / cos(lat)) (the widest
    point of the circle lies poleward of its centre, so distance / cos(lat) is too narrow
    for large circles), split in two across the antimeridian. Rows with a latitude or
    longitude outside [-90, 90] / [-180, 180] (valid FHIR decimals, meaningful to
    haversine_km) are always candidates."""
    r = math.degrees(cond.km / EARTH_KM) * (1 + 1e-9) + _BOX_MARGIN      # degrees of arc
    box: dict = {"lat": {"$gte": cond.lat - r, "$lte": cond.lat + r}}
    if abs(cond.lat) + r < 90:
        ratio = math.sin(math.radians(r)) / math.cos(math.radians(cond.lat))
        dlon = math.degrees(math.asin(ratio)) + _BOX_MARGIN if ratio < 1 else 180.0
        lo, hi = cond.lon - dlon, cond.lon + dlon
        if dlon >= 180:
            pass
        elif lo < -180:
            box["$or"] = [{"lon": {"$gte": lo + 360}}, {"lon": {"$lte": hi}}]
        elif hi > 180:
            box["$or"] = [{"lon": {"$gte": lo}}, {"lon": {"$lte": hi - 360}}]
        else:
            box["lon"] = {"$gte": lo, "$lte": hi}
    return {"$or": [box,
                    {"lat": {"$not": {"$gte": -90, "$lte": 90}}},
                    {"lon": {"$not": {"$gte": -180, "$lte": 180}}}]}
