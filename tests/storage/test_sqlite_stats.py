"""Planner statistics are gathered once the store has grown, and again when it doubles."""
from __future__ import annotations

from fhirserver.storage import sqlite_stats
from fhirserver.storage.base import Write
from fhirserver.storage.sqlite import SqliteStore


def analyzed_at(store):
    row = store._conn().execute("SELECT value FROM store_meta WHERE key = 'analyzed_at_size'").fetchone()
    return row[0] if row else 0


def test_statistics_follow_growth(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_stats, "CHECK_EVERY", 10)
    monkeypatch.setattr(sqlite_stats, "FIRST_AT", 20)
    store = SqliteStore(str(tmp_path / "s.db"), synchronous="NORMAL")
    for i in range(100):
        with store.transaction() as tx:
            tx.write(Write("Patient", f"p{i}", 1, "2026-01-01T00:00:00.000000Z", "POST", b"{}", {}))
    first = analyzed_at(store)
    assert 20 <= first <= 100
    assert store._conn().execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0
    store.analyze()
    assert analyzed_at(store) == 100
