"""Concurrent writers across worker processes (the session server: 2 workers x 4 threads).

(a) blind PUTs of one resource never lose a version;
(b) read-then-PUT with If-Match never loses an update: every success is a version,
    every version is what a successful writer sent.
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter

import requests

from tests._uhid import with_uhid

from ._server import JSON_HEADERS, TIMEOUT, all_entries, get, put, session

K = 6           # client threads (more than the 4 threads of one worker: both workers are busy)
M = 10          # PUTs per thread in (a)
ROUNDS = 12     # read-then-PUT rounds per thread in (b)


def _patient(pid: str, marker: str) -> dict:
    return with_uhid({"resourceType": "Patient", "id": pid, "active": True,
                      "name": [{"family": "Concurrent", "given": [marker]}]}, pid)


def _run_threads(target, k: int = K) -> None:
    barrier = threading.Barrier(k)
    errors: list[BaseException] = []

    def wrapped(n):
        try:
            barrier.wait(TIMEOUT)
            target(n)
        except BaseException as e:          # surfaced in the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(n,)) for n in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    if errors:
        raise errors[0]


def test_blind_puts_from_many_clients_keep_every_version(base):
    pid = "conc-a-" + uuid.uuid4().hex[:12]
    s = session()
    assert put(s, f"{base}/Patient/{pid}", _patient(pid, "initial")).status_code == 201
    statuses: Counter = Counter()
    lock = threading.Lock()

    def writer(n):
        c = requests.Session()
        for i in range(M):
            r = c.put(f"{base}/Patient/{pid}", json=_patient(pid, f"w{n}-{i}"), headers=JSON_HEADERS,
                      timeout=TIMEOUT)
            with lock:
                statuses[r.status_code] += 1

    _run_threads(writer)
    assert statuses == Counter({200: K * M}), statuses
    r = get(s, f"{base}/Patient/{pid}")
    assert r.json()["meta"]["versionId"] == str(1 + K * M)
    assert r.headers["ETag"] == f'W/"{1 + K * M}"'
    entries = all_entries(s, f"{base}/Patient/{pid}/_history", params={"_count": "1000"})
    assert len(entries) == 1 + K * M
    assert get(s, f"{base}/Patient/{pid}/_history", params={"_count": "1"}).json()["total"] == 1 + K * M
    assert sorted(int(e["resource"]["meta"]["versionId"]) for e in entries) == list(range(1, 2 + K * M))


def test_if_match_read_modify_write_loses_no_update(base):
    pid = "conc-b-" + uuid.uuid4().hex[:12]
    s = session()
    assert put(s, f"{base}/Patient/{pid}", _patient(pid, "initial")).status_code == 201
    lock = threading.Lock()
    won: dict[int, str] = {}            # versionId -> marker of the writer that produced it
    statuses: Counter = Counter()

    def writer(n):
        c = requests.Session()
        for i in range(ROUNDS):
            r = c.get(f"{base}/Patient/{pid}", headers={"Accept": JSON_HEADERS["Accept"]}, timeout=TIMEOUT)
            assert r.status_code == 200, r.text
            current = r.json()
            version = int(current["meta"]["versionId"])
            assert r.headers["ETag"] == f'W/"{version}"'
            marker = f"w{n}-{i}"
            current["name"] = [{"family": "Concurrent", "given": [marker]}]
            r = c.put(f"{base}/Patient/{pid}", json=current, timeout=TIMEOUT,
                      headers={**JSON_HEADERS, "If-Match": f'W/"{version}"'})
            with lock:
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    new = int(r.json()["meta"]["versionId"])
                    assert new == version + 1, (new, version)
                    assert new not in won, f"version {new} acknowledged to two writers"
                    won[new] = marker

    _run_threads(writer)
    assert set(statuses) <= {200, 412}, statuses
    successes = statuses[200]
    assert successes >= 1
    r = get(s, f"{base}/Patient/{pid}")
    assert r.json()["meta"]["versionId"] == str(1 + successes)
    assert sorted(won) == list(range(2, 2 + successes))
    entries = all_entries(s, f"{base}/Patient/{pid}/_history", params={"_count": "1000"})
    assert len(entries) == 1 + successes
    for e in entries:
        v = int(e["resource"]["meta"]["versionId"])
        given = e["resource"]["name"][0]["given"][0]
        assert given == ("initial" if v == 1 else won[v]), (v, given)


def test_concurrent_conditional_creates_make_one_resource(base):
    """If-None-Exist from K clients at once (both workers): one 201, the others 200 with the same id."""
    value = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:medport:ccreate", "value": value}]}
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def creator(n):
        r = requests.post(f"{base}/Patient", json=body, timeout=TIMEOUT,
                          headers={**JSON_HEADERS, "If-None-Exist": f"identifier=urn:medport:ccreate|{value}"})
        with lock:
            results.append((r.status_code, r.json().get("id")))

    _run_threads(creator, k=8)
    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({201: 1, 200: 7}), results
    assert len({rid for _, rid in results}) == 1
    r = get(session(), f"{base}/Patient", params={"identifier": f"urn:medport:ccreate|{value}"})
    assert r.json()["total"] == 1
