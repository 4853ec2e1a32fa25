"""Definitions resolve store-held first, then shipped (fhirserver/conformance/definitions.py)."""
from __future__ import annotations

import gzip
import importlib
import json

from fhirserver.conformance import catalogue, definitions
from fhirserver.interactions import common, create

definitions_module = importlib.import_module("fhirserver.conformance.definitions")

FACILITY = "https://medport.health/fhir/CodeSystem/facility-type"


def code_system(url: str, version: str, code: str) -> dict:
    return {"resourceType": "CodeSystem", "url": url, "version": version, "status": "active",
            "content": "complete", "concept": [{"code": code}]}


def test_catalogue_reads_resources_bundles_and_arrays(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(code_system("urn:a", "1", "x")))
    (tmp_path / "bundle.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": code_system("urn:b", "1", "y")}]}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "many.json.gz").write_bytes(gzip.compress(json.dumps(
        [code_system("urn:c", "1", "z"), code_system("urn:c", "2", "z2")]).encode()))
    (tmp_path / "README.md").write_text("not a definition")
    cat = catalogue.Catalogue((str(tmp_path),))
    assert cat.get("CodeSystem", "urn:a")["concept"][0]["code"] == "x"
    assert cat.get("CodeSystem", "urn:b") is not None
    assert cat.get("CodeSystem", "urn:c")["version"] == "2"            # the newest when none is asked
    assert cat.get("CodeSystem", "urn:c", "1")["concept"][0]["code"] == "z"
    assert cat.get("CodeSystem", "urn:nope") is None
    assert len(cat.all_of("CodeSystem")) == 4


def test_newest_orders_versions_numerically():
    found = [code_system("u", v, "c") for v in ("1.10.0", "1.9.2", "1.2")]
    assert catalogue.newest(found)["version"] == "1.10.0"


def test_shipped_definitions_resolve_without_a_store():
    assert definitions(None).resolve("CodeSystem", FACILITY)["url"] == FACILITY
    assert definitions(None).resolve("CodeSystem", FACILITY + "|no-such-version") is None
    assert definitions(None).resolve("CodeSystem", "") is None


def test_store_held_definitions_win_over_shipped(ctx, monkeypatch):
    shipped = definitions(None).resolve("CodeSystem", FACILITY)
    defs = definitions(ctx.store)
    assert defs.resolve("CodeSystem", FACILITY)["concept"] == shipped["concept"]
    mine = dict(code_system(FACILITY, str(shipped.get("version") or "1"), "stored-only"))
    create.create(ctx, "CodeSystem", mine)
    defs.changed()
    assert defs.resolve("CodeSystem", FACILITY)["concept"] == [{"code": "stored-only"}]
    gen = defs.generation
    defs.changed()
    assert defs.generation == gen + 1


def test_lookups_are_reused_for_the_ttl_then_read_again(ctx, monkeypatch):
    defs = definitions(ctx.store)
    monkeypatch.setattr(defs, "_uncached_until", 0.0)     # the init step's own writes are long committed
    assert defs.resolve("CodeSystem", "urn:later") is None
    # another process's write (this process's own writes call changed(): interactions/common.py)
    monkeypatch.setattr(common, "_definition_written", lambda tx, rtype: None)
    create.create(ctx, "CodeSystem", code_system("urn:later", "1", "a"))
    assert defs.resolve("CodeSystem", "urn:later") is None       # seen after the TTL
    monkeypatch.setattr(definitions_module, "DEFINITIONS_TTL", 0.0)
    assert defs.resolve("CodeSystem", "urn:later")["url"] == "urn:later"


def test_this_process_sees_its_own_writes_at_once(ctx):
    defs = definitions(ctx.store)
    assert defs.resolve("CodeSystem", "urn:now") is None
    gen = defs.generation
    create.create(ctx, "CodeSystem", code_system("urn:now", "1", "a"))
    assert defs.resolve("CodeSystem", "urn:now")["url"] == "urn:now" and defs.generation > gen


def test_nothing_is_kept_while_a_write_of_this_process_may_be_uncommitted(ctx):
    """changed() runs inside the writing transaction: a lookup made before its commit is not kept."""
    defs = definitions(ctx.store)
    defs.changed()
    assert defs.resolve("CodeSystem", "urn:soon") is None          # the write has not committed yet
    create.create(ctx, "CodeSystem", code_system("urn:soon", "1", "a"))
    assert defs.resolve("CodeSystem", "urn:soon")["url"] == "urn:soon"


def test_one_definitions_per_store(ctx):
    assert definitions(ctx.store) is definitions(ctx.store)


def test_the_generation_follows_another_process_within_the_ttl(ctx, monkeypatch):
    defs = definitions(ctx.store)
    monkeypatch.setattr(definitions_module, "DEFINITIONS_TTL", 0.0)
    gen = defs.generation
    assert defs.generation == gen                                   # nothing written: unchanged
    monkeypatch.setattr(common, "_definition_written", lambda tx, rtype: None)     # as if another process wrote
    create.create(ctx, "ValueSet", {"resourceType": "ValueSet", "url": "urn:vs", "status": "active"})
    assert defs.generation == gen + 1
    create.create(ctx, "Patient", {"resourceType": "Patient"})
    assert defs.generation == gen + 1                               # not a definition
