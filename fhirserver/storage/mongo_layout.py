"""How the MongoDB store lays out resources, versions, index entries and records; and its indexes.

resources   one document per logical resource, holding its current version (body included, so a
            read is one document) and its search index entries:
              {_id: "Patient/123", type, id, version, deleted, last_updated, method, body, blob,
               rid: ObjectId (creation order: the tie-breaker of every search),
               pk: partition key (the patient whose compartment holds the resource, see docs),
               ix: {token: [{p: "Observation.code", g: 0, system, code, text}, ...],
                    date: [{p, g, low, high}], ..., composite: [{p, g, c0: [...], c1: [...]}]}}
versions    every version ever written: {_id: "Patient/123/2", r: "Patient/123", type, id, version, last_updated,
            method, body, blob, seq: ObjectId (write order: the history paging key)}
records     small JSON records (auth state, jobs): {_id: "kind/key", kind, key, value, expires_at,
            expire (a date for the TTL index)}
blobs       small Binary contents inline; larger ones in GridFS (mongo_blobs.py)
locks       one document per conditional search run in a transaction, so that concurrent
            conditional creates with the same criteria conflict (snapshot isolation alone would let
            both create); removed a day later by a TTL index

Index rows keep the column names of their kind module (search/kinds), so a query is
{"ix.<kind>": {"$elemMatch": {"p": key, **kind.mongo(cond)}}} and compound multikey indexes
led by ix.<kind>.p serve it. Every index is listed in docs/storage-mongodb.md.
"""
from __future__ import annotations

import datetime
import math

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, HASHED, IndexModel

from ..search.compartment import members
from ..search.extract import readers
from ..search.kinds import KIND_MODULES
from .base import Version, Write

RESOURCES, VERSIONS, RECORDS, BLOBS, LOCKS = "resources", "versions", "records", "blobs", "locks"
JOURNAL = "journal"          # Store.journal_*: appended, then drained into resources (audit_log/journal.py)
CLAIMS = "claims"       # unique keys bound for good (UHIDs): _id "<kind>/<key>", owner
VERSION_FIELDS = {"type": 1, "id": 1, "version": 1, "last_updated": 1, "method": 1, "body": 1, "blob": 1}


def index_field(kind: str) -> str:
    return f"ix.{kind}"


def index_models() -> dict[str, list[IndexModel]]:
    """Every index of every collection (created idempotently at start-up and by `medport db init`)."""
    resources = [
        IndexModel([("type", ASCENDING), ("deleted", ASCENDING), ("rid", ASCENDING)], name="type_rid"),
        IndexModel([("pk", ASCENDING), ("_id", ASCENDING)], name="partition"),     # the shard key
        IndexModel([("ix.composite.p", ASCENDING)], name="ix_composite"),
    ]
    for kind, module in KIND_MODULES.items():
        for cols in module.LOOKUP:
            fields = [c.split()[0] for c in cols if c.split()[0] != "rid"]
            resources.append(IndexModel([(f"ix.{kind}.p", ASCENDING)] + [(f"ix.{kind}.{c}", ASCENDING) for c in fields],
                                        name=f"ix_{kind}_{'_'.join(fields)}"))
    versions = [
        IndexModel([("seq", DESCENDING)], name="seq"),
        IndexModel([("type", ASCENDING), ("seq", DESCENDING)], name="type_seq"),
        IndexModel([("r", ASCENDING), ("version", DESCENDING)], name="resource_version"),
        IndexModel([("r", HASHED)], name="shard"),
        IndexModel([("last_updated", ASCENDING)], name="last_updated"),
        IndexModel([("blob", ASCENDING)], name="blob", partialFilterExpression={"blob": {"$type": "string"}}),
    ]
    locks = [IndexModel([("at", ASCENDING)], name="ttl", expireAfterSeconds=24 * 3600)]
    records = [
        IndexModel([("kind", ASCENDING), ("key", ASCENDING)], name="kind_key"),
        IndexModel([("expire", ASCENDING)], name="ttl", expireAfterSeconds=0),
    ]
    return {RESOURCES: resources, VERSIONS: versions, RECORDS: records, LOCKS: locks}


def resource_doc(w: Write, rid: ObjectId) -> dict:
    deleted = w.method == "DELETE"
    return {"_id": f"{w.type}/{w.id}", "type": w.type, "id": w.id, "version": w.version, "deleted": deleted,
            "last_updated": w.last_updated, "method": w.method, "body": w.body, "blob": w.blob, "rid": rid,
            "pk": partition_key(w.type, w.id, {} if deleted else w.index),
            "ix": {} if deleted else index_doc(w.index)}


def version_doc(w: Write) -> dict:
    return {"_id": f"{w.type}/{w.id}/{w.version}", "r": f"{w.type}/{w.id}", "type": w.type, "id": w.id,
            "version": w.version,
            "last_updated": w.last_updated, "method": w.method, "body": w.body, "blob": w.blob, "seq": ObjectId()}


def index_doc(index) -> dict:
    """Index rows (key, group, *columns) as sub-documents per kind; composite components also grouped
    by element instance, so one $elemMatch finds a group where every component matches. A component
    read from a base parameter's rows (search/extract.py) is put together from those rows: the
    composite sub-documents are the same as when every component had rows of its own."""
    out: dict[str, list] = {}
    composites: dict[tuple[str, int], dict] = {}
    for kind, rows in index.items():
        columns = KIND_MODULES[kind].COLUMNS
        for row in rows:
            key, group = row[0], row[1]
            element = dict(zip(columns, row[2:], strict=True))
            entry = {"p": key, "g": group, **element}
            if kind == "special":       # the point as a unit vector: near's exact distance test (mongo_query)
                entry.update(unit_vector(element.get("lat"), element.get("lon")))
            out.setdefault(kind, []).append(entry)
            if "#" in key:
                parent, _, i = key.rpartition("#")
                slot = composites.setdefault((parent, group), {"p": parent, "g": group})
                slot.setdefault(f"c{i}", []).append(element)
            elif group:        # a base parameter's row numbered by element: a component of composites
                for parent, i in readers(key):
                    slot = composites.setdefault((parent, group), {"p": parent, "g": group})
                    slot.setdefault(f"c{i}", []).append(element)
    if composites:
        out["composite"] = list(composites.values())
    return out


def unit_vector(lat, lon) -> dict:
    """{ux, uy, uz}: the point (degrees) on the unit sphere; {} if it is not a finite number pair. The
    haversine of two points is a quarter of the squared distance between their unit vectors, so the
    exact great-circle test of `near` is arithmetic on these fields (no trigonometry on the server).
    Latitudes and longitudes off the usual ranges are points all the same, as for haversine_km."""
    if not (isinstance(lat, (int, float)) and isinstance(lon, (int, float))
            and math.isfinite(lat) and math.isfinite(lon)):
        return {}
    p, lam = math.radians(lat), math.radians(lon)
    return {"ux": math.cos(p) * math.cos(lam), "uy": math.cos(p) * math.sin(lam), "uz": math.sin(p)}


def partition_key(rtype: str, id: str, index) -> str:
    """The shard-key value: the patient whose compartment holds the resource (so that a patient's
    records live together), else the resource itself."""
    if rtype == "Patient":
        return f"Patient/{id}"
    codes = members("Patient").get(rtype, ())
    keys = {f"{rtype}.{c}" for c in codes}
    for row in index.get("reference", ()):
        if row[0] in keys and row[2] == "Patient":
            return f"Patient/{row[3]}"
    return f"{rtype}/{id}"


def to_version(doc: dict) -> Version:
    body = doc.get("body")
    return Version(doc["type"], doc["id"], doc["version"], doc["last_updated"], doc["method"],
                   bytes(body) if body is not None else None, doc.get("blob"))


def expiry(expires_at: float | None):
    return None if expires_at is None else datetime.datetime.fromtimestamp(expires_at, datetime.timezone.utc)
