"""What replacing one quality facts row by another changes (both stores apply it in the write's own
transaction; storage/base.py Transaction.put_quality_row, docs/data-quality.md "Counters")."""
from __future__ import annotations

from collections import Counter


def counter_deltas(old: dict | None, new: dict | None) -> dict[tuple[str, str, str, str], int]:
    """{(custodian, type, dimension, key): change} without zero changes: the old row's counters -1, the
    new row's +1 (a row that did not change moves nothing)."""
    deltas: Counter = Counter()
    for row, sign in ((old, -1), (new, 1)):
        if row is not None:
            for dim, key in row["dims"]:
                deltas[(row["c"], row["t"], dim, key)] += sign
    return {k: n for k, n in deltas.items() if n}


def subject_changes(old: dict | None, new: dict | None) -> tuple[list[str], list[str]]:
    """(Patients no longer referred to, Patients newly referred to)."""
    before = set(old.get("subjects", ())) if old else set()
    after = set(new.get("subjects", ())) if new else set()
    return sorted(before - after), sorted(after - before)
