"""The process cache of public signing keys is swapped atomically (issue 13.8): requests verifying
tokens while the published set changes (rotation, retirement, or two apps on two stores in one
process) never see a cache being cleared and refilled (a KeyError, a 500). Under CPython's GIL the
old clear-then-refill had no switch point inside its windows, so this hammer could not make it fail
there; it guards the swap (and free-threaded builds, where it would)."""
from __future__ import annotations

import sys
import threading

from fhirserver.smart_auth.keys import SigningKeys


class Records:
    """Just the records a SigningKeys reads and writes."""

    def __init__(self):
        self.records = {}

    def put_record(self, kind, key, value, expires_at=None):
        self.records[(kind, key)] = value

    def list_records(self, kind):
        return sorted((k, v) for (kd, k), v in self.records.items() if kd == kind)


def test_key_set_under_concurrent_changes_of_the_published_set():
    a, b = SigningKeys(Records()), SigningKeys(Records())
    kid_a, kid_b = a.active().kid, b.active().kid       # two stores, two published sets
    errors, stop = [], threading.Event()

    def hammer(keys, kid):
        try:
            for _ in range(5000):
                if stop.is_set():
                    return
                assert [k.kid for k in keys.key_set().keys] == [kid]
        except BaseException as e:      # noqa: BLE001 - reported below
            errors.append(e)
            stop.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)         # switch threads as often as possible
    try:
        threads = [threading.Thread(target=hammer, args=(k, kid)) for k, kid in [(a, kid_a), (b, kid_b)] * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
