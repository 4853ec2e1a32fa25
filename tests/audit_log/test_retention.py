"""medport audit prune (docs/audit.md, Retention): AuditEvents older than audit_retention_days and
covered by a signed checkpoint go; the log keeps their leaf hashes; verify reports them as pruned and
still finds deletions above the marker."""
from __future__ import annotations

import os
import re
import time

import pytest

from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log.export import export, verifier_keys, verify_export
from fhirserver.audit_log.retention import RetentionError, prune
from fhirserver.audit_log.verify import verify
from tests.audit_log.test_log import _tamper, stored_events, write_events

LATER = time.time() + 3 * 86400          # three days on: a one-day retention covers everything written now


def _logged(ctx, n, start=0):
    write_events(ctx, n, start)
    audit_log.integrate(ctx.store, ctx.settings)


def test_prune_keeps_the_log_and_verify_reports_pruned_entries(ctx, backend):
    store, settings = ctx.store, ctx.settings
    settings.audit_retention_days = 1
    _logged(ctx, 10)                           # the first checkpoint covers these 10
    write_events(ctx, 4, 10)
    audit_log.integrate(store, settings)       # logged, but no checkpoint yet covers them (not due)
    batches = store.list_records(audit_log.BATCH_KIND)
    assert prune(store, settings, now=time.time()) == (0, 0)      # nothing older than a day
    assert prune(store, settings, now=LATER) == (10, 10)
    assert store.list_records(audit_log.BATCH_KIND) == batches    # batches are never rewritten
    marker = store.get_record(audit_log.STATE_KIND, "pruned")
    assert marker["below"] == 10 and marker["horizon"] and marker["at"]
    assert len(stored_events(store)) == 4
    report = verify(store)
    assert report.ok and (report.size, report.pruned) == (14, 10), report.problems
    assert prune(store, settings, now=LATER) == (0, 10)             # idempotent
    # above the marker a deletion is still a deletion
    _logged(ctx, 10, 14)
    _tamper(store, backend, "deleted", stored_events(store))       # the 4th remaining one: index 13
    report = verify(store)
    assert (report.first.index, report.first.kind) == (13, "deleted entry"), report.problems


def test_pruned_entries_are_not_exported_but_a_range_above_verifies(ctx, tmp_path):
    ctx.settings.audit_retention_days = 1
    _logged(ctx, 6)
    prune(ctx.store, ctx.settings, now=LATER)
    write_events(ctx, 3, 6)
    out, held = str(tmp_path / "x.ndjson"), str(tmp_path / "x.checkpoint")
    assert export(ctx.store, ctx.settings, out, held) == (6, 9, 9)
    with open(held, encoding="utf-8") as f:
        assert verify_export(out, f.read(), verifier_keys(ctx.store, ctx.settings)).ok


def test_prune_refuses_to_destroy_a_tampered_entry(ctx, backend):
    ctx.settings.audit_retention_days = 1
    _logged(ctx, 10)
    _tamper(ctx.store, backend, "changed", stored_events(ctx.store))
    with pytest.raises(RetentionError) as e:
        prune(ctx.store, ctx.settings, now=LATER)
    assert e.value.code == 1 and "index 3" in str(e.value)
    assert len(stored_events(ctx.store)) == 10
    assert ctx.store.get_record(audit_log.STATE_KIND, "pruned") is None


def test_cli_prune_refuses_without_retention(tmp_path, capsys, monkeypatch):
    from fhirserver import create_app
    from fhirserver.cli import main
    from tests.conftest import make_settings
    settings = make_settings(tmp_path)
    _logged(create_app(settings).config["MEDPORT"], 3)
    monkeypatch.setenv("MEDPORT_AUDIT_RETENTION_DAYS", "0")
    assert main(["audit", "prune", "--store", settings.store]) == 2
    assert "audit retention is off" in capsys.readouterr().err
    monkeypatch.setenv("MEDPORT_AUDIT_RETENTION_DAYS", "1")
    assert main(["audit", "prune", "--store", settings.store]) == 0
    assert "0 AuditEvents pruned" in capsys.readouterr().out     # all younger than a day


def test_only_retention_calls_expunge():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "fhirserver")
    callers = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    if re.search(r"\.expunge\(", f.read()):
                        callers.append(name)
    assert callers == ["retention.py"]
