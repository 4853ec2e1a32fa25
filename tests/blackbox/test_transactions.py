"""Transaction Bundles over HTTP against a real `medport serve` (http://hl7.org/fhir/R4/http.html#transaction).

1. Concurrent transactions from several client processes that update the same
   two resources never lose an update and never interleave: version n of P and
   version n of O always come from the same transaction. If-Match inside
   entries: exactly one of several conflicting transactions wins per round, the
   others get 412 and leave nothing behind (not even their earlier entries).
2. SIGKILL to the server while a 3000-entry transaction is in flight leaves
   all of it or none of it, never part: kills at random delays, one aimed at
   the write phase (the store's writer lock is held) and one just after the
   commit (lock released, response not yet sent: must be all).
3. The Synthea bundles (tests/data/synthea-2021: conditional references;
   tests/data/synthea: urn:uuid references) load over HTTP with every
   reference resolved and exactly the bundles' resources stored.
4. Errors: an invalid entry (400), an unresolvable conditional reference (412)
   and a bundle over MEDPORT_MAX_BUNDLE_ENTRIES (413) store nothing and name
   the entry.
"""
from __future__ import annotations

import fcntl
import glob
import json
import multiprocessing
import os
import random
import threading
import time
import uuid
from collections import Counter

import requests

from fhirserver.conformance import seed
from tests._uhid import uhid_identifier

from ._server import JSON_HEADERS, TIMEOUT, all_entries, get, post, put, session
from ._server import history_total as all_versions

DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def is_server_provenance(resource: dict) -> bool:
    """The Provenance the server writes with every write (governance/provenance.py: its activity is a
    v3-DataOperation), not one a client sent."""
    return resource.get("resourceType") == "Provenance" and any(
        c.get("system") == DATA_OPERATION for c in (resource.get("activity") or {}).get("coding", ()))


def history_total(base: str, path: str = "_history") -> int:
    """Versions of what was written, less the server's own Provenance of each write (one version each)."""
    total = all_versions(base, path)
    if path != "_history":
        return total
    provenance = all_entries(session(), f"{base}/Provenance", params={"_count": "1000"})
    return total - sum(1 for e in provenance if is_server_provenance(e["resource"]))

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTHEA_2019 = os.path.join(REPO, "tests", "data", "synthea")
SYNTHEA_2021 = os.path.join(REPO, "tests", "data", "synthea-2021")

PROCS = 4            # client processes
TX_PER_PROC = 10     # transactions per process (blind PUTs)
IF_MATCH_ROUNDS = 5  # rounds of conflicting If-Match transactions
BIG = 3000           # entries of the transaction that SIGKILL interrupts
KILL_ROUNDS = 4

SYS = "urn:medport-test:tx"


def _bundle(entries: list[dict], kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _patient(pid: str | None, marker: str) -> dict:
    r = {"resourceType": "Patient", "active": True, "name": [{"family": "Tx", "given": [marker]}],
         "identifier": [{"system": SYS, "value": marker}]}
    if pid:    # a Patient written again keeps its UHID
        r["id"] = pid
        r["identifier"].append(uhid_identifier(pid))
    return r


def _observation(oid: str | None, subject: str, marker: str, system: str = SYS) -> dict:
    r = {"resourceType": "Observation", "status": "final", "code": {"text": "transaction test"},
         "subject": {"reference": subject}, "valueString": marker,
         "identifier": [{"system": system, "value": marker}]}
    if oid:
        r["id"] = oid
    return r


def _count(s, base: str, rtype: str, params: dict) -> int:
    r = get(s, f"{base}/{rtype}", params={**params, "_summary": "count"})
    assert r.status_code == 200, r.text
    return r.json()["total"]


def _locations(r: requests.Response) -> list[str]:
    return [e["response"].get("location") for e in r.json()["entry"]]


def _history_by_version(s, base: str, path: str) -> dict[int, dict]:
    entries = all_entries(s, f"{base}/{path}/_history", params={"_count": "1000"})
    out = {int(e["resource"]["meta"]["versionId"]): e["resource"] for e in entries}
    assert len(out) == len(entries), "two history entries with one versionId"
    return out


# -- 1. concurrency ----------------------------------------------------------------------------------

def _mixed_tx(pid: str, oid: str, marker: str, new_system: str, o_if_match: str | None = None) -> dict:
    """POST a new Patient and an Observation that references it by urn:uuid, PUT P, PUT O."""
    pat_url, obs_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    o_request = {"method": "PUT", "url": f"Observation/{oid}"}
    if o_if_match:
        o_request["ifMatch"] = o_if_match
    return _bundle([
        {"fullUrl": pat_url, "resource": {**_patient(None, marker), "identifier": [{"system": new_system,
                                                                                     "value": marker}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": obs_url, "resource": _observation(None, pat_url, marker, new_system),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": _patient(pid, marker), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"resource": _observation(oid, f"Patient/{pid}", marker), "request": o_request},
    ])


def _blind_worker(base, pid, oid, new_system, n, barrier, results):
    s = requests.Session()
    out = []
    try:
        barrier.wait(TIMEOUT)
        for i in range(TX_PER_PROC):
            marker = f"p{n}-{i}"
            r = post(s, base, _mixed_tx(pid, oid, marker, new_system))
            out.append((marker, r.status_code, _locations(r) if r.status_code == 200 else r.text[:2000]))
    except Exception as e:         # reported by the parent
        out.append(("error", -1, repr(e)))
    results.put((n, out))


def _if_match_worker(base, pid, oid, new_system, n, barrier, results):
    s = requests.Session()
    out = []
    try:
        for rnd in range(IF_MATCH_ROUNDS):
            barrier.wait(TIMEOUT)                       # the previous round is over
            r = get(s, f"{base}/Observation/{oid}")
            seen = r.json()["meta"]["versionId"]
            barrier.wait(TIMEOUT)                       # everyone has read the same version
            marker = f"r{rnd}-p{n}"
            r = post(s, base, _mixed_tx(pid, oid, marker, new_system, o_if_match=f'W/"{seen}"'))
            out.append((rnd, marker, r.status_code, _locations(r) if r.status_code == 200 else r.json()))
    except Exception as e:
        out.append((-1, "error", -1, repr(e)))
    results.put((n, out))


def _run_processes(target, args: tuple) -> dict[int, list]:
    mp = multiprocessing.get_context("spawn")
    barrier, results = mp.Barrier(PROCS), mp.Queue()
    procs = [mp.Process(target=target, args=args + (n, barrier, results), daemon=True) for n in range(PROCS)]
    for p in procs:
        p.start()
    try:
        out = dict(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    errors = [x for xs in out.values() for x in xs if "error" in x]
    assert not errors, errors
    return out


def _setup_pair(s, base: str, tag: str) -> tuple[str, str]:
    pid, oid = f"tx-{tag}-p-{uuid.uuid4().hex[:10]}", f"tx-{tag}-o-{uuid.uuid4().hex[:10]}"
    assert put(s, f"{base}/Patient/{pid}", _patient(pid, "initial")).status_code == 201
    assert put(s, f"{base}/Observation/{oid}", _observation(oid, f"Patient/{pid}", "initial")).status_code == 201
    return pid, oid


def _check_pairs_in_step(s, base: str, pid: str, oid: str, versions: int) -> tuple[dict, dict]:
    """P and O both have `versions` versions, and version n of both was written by one transaction."""
    for rtype, rid in (("Patient", pid), ("Observation", oid)):
        r = get(s, f"{base}/{rtype}/{rid}")
        assert r.json()["meta"]["versionId"] == str(versions), (rtype, r.json()["meta"], versions)
        assert history_total(base, f"{rtype}/{rid}/_history") == versions
    ph, oh = _history_by_version(s, base, f"Patient/{pid}"), _history_by_version(s, base, f"Observation/{oid}")
    assert sorted(ph) == sorted(oh) == list(range(1, versions + 1))
    for v in range(1, versions + 1):
        assert ph[v]["name"][0]["given"] == [oh[v]["valueString"]], \
            f"version {v}: P was written by {ph[v]['name'][0]['given']}, O by {oh[v]['valueString']}"
        # one commit: P's version v, then O's version v, before the next transaction's version v + 1
        assert ph[v]["meta"]["lastUpdated"] <= oh[v]["meta"]["lastUpdated"]
        if v < versions:
            assert oh[v]["meta"]["lastUpdated"] <= ph[v + 1]["meta"]["lastUpdated"]
    return ph, oh


def _check_posted(s, base: str, new_system: str, acked: dict[str, list[str]]) -> None:
    """Every acknowledged POST exists, its urn:uuid reference rewritten to the Patient it created;
    nothing else was stored under new_system."""
    assert _count(s, base, "Patient", {"identifier": f"{new_system}|"}) == len(acked)
    assert _count(s, base, "Observation", {"identifier": f"{new_system}|"}) == len(acked)
    for marker, locs in acked.items():
        pat_id, obs_id = locs[0].split("/")[1], locs[1].split("/")[1]
        assert locs[0] == f"Patient/{pat_id}/_history/1" and locs[1] == f"Observation/{obs_id}/_history/1"
        obs = get(s, f"{base}/Observation/{obs_id}").json()
        assert obs["subject"]["reference"] == f"Patient/{pat_id}" and obs["valueString"] == marker
        pat = get(s, f"{base}/Patient/{pat_id}").json()
        assert pat["identifier"][0]["value"] == marker


def test_concurrent_transactions_lose_no_update_and_never_interleave(base):
    s = session()
    pid, oid = _setup_pair(s, base, "blind")
    new_system = f"{SYS}:blind:{uuid.uuid4().hex}"
    out = _run_processes(_blind_worker, (base, pid, oid, new_system))

    statuses = Counter(status for xs in out.values() for _, status, _ in xs)
    assert statuses == Counter({200: PROCS * TX_PER_PROC}), \
        (statuses, [x for xs in out.values() for x in xs if x[1] != 200][:3])
    acked = {marker: locs for xs in out.values() for marker, status, locs in xs if status == 200}
    ph, _ = _check_pairs_in_step(s, base, pid, oid, 1 + len(acked))
    # each transaction's own P and O versions (from its response locations) are a pair
    for marker, locs in acked.items():
        pv, ov = locs[2].split("/_history/"), locs[3].split("/_history/")
        assert pv[0] == f"Patient/{pid}" and ov[0] == f"Observation/{oid}"
        assert pv[1] == ov[1], f"{marker}: P version {pv[1]} but O version {ov[1]}"
        assert ph[int(pv[1])]["name"][0]["given"] == [marker]
    assert sorted(p["name"][0]["given"][0] for v, p in ph.items() if v > 1) == sorted(acked)
    _check_posted(s, base, new_system, acked)


def test_concurrent_if_match_transactions_one_wins_rest_412_nothing_partial(base):
    s = session()
    pid, oid = _setup_pair(s, base, "ifmatch")
    new_system = f"{SYS}:ifmatch:{uuid.uuid4().hex}"
    before = history_total(base)
    out = _run_processes(_if_match_worker, (base, pid, oid, new_system))

    rows = [x for xs in out.values() for x in xs]
    for rnd in range(IF_MATCH_ROUNDS):
        st = Counter(status for r, _, status, _ in rows if r == rnd)
        assert st == Counter({200: 1, 412: PROCS - 1}), (rnd, st)
    for _, marker, status, body in rows:
        if status == 412:
            assert body["resourceType"] == "OperationOutcome"
            text = json.dumps(body)
            assert "Bundle.entry[3]" in text, text
    acked = {marker: locs for _, marker, status, locs in rows if status == 200}
    ph, _ = _check_pairs_in_step(s, base, pid, oid, 1 + IF_MATCH_ROUNDS)
    winners = {r: m for r, m, status, _ in rows if status == 200}
    assert [ph[v]["name"][0]["given"][0] for v in range(2, 2 + IF_MATCH_ROUNDS)] == \
        [winners[r] for r in range(IF_MATCH_ROUNDS)]
    _check_posted(s, base, new_system, acked)
    # losers wrote their POSTs and the blind PUT of P before failing on O: all of it rolled back
    assert history_total(base) == before + 4 * IF_MATCH_ROUNDS


# -- 2. SIGKILL mid-transaction ----------------------------------------------------------------------

class _SentBody:
    """A request body that says when its last byte has been handed to the socket."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.sent = data, 0, threading.Event()

    def __len__(self):
        return len(self.data) - self.pos

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.pos if n is None or n < 0 else n
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        if not chunk:
            self.sent.set()
        return chunk


class _InFlight:
    def __init__(self, url: str, data: bytes):
        self.body = _SentBody(data)
        self.response = self.error = None
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url):
        try:
            self.response = requests.post(url, data=self.body, headers=JSON_HEADERS, timeout=120)
        except requests.RequestException as e:
            self.error = e
        finally:
            self.body.sent.set()


def _big_transaction(system: str) -> bytes:
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {"resourceType": "Observation", "status": "final",
                             "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                             "identifier": [{"system": system, "value": f"v{i}"}],
                             "valueQuantity": {"value": i, "unit": "/min"}},
                "request": {"method": "POST", "url": "Observation"}} for i in range(BIG)]
    return json.dumps(_bundle(entries)).encode()


def _writer_lock_held(store_path: str) -> bool:
    """Whether a server process holds the store's writer lock (it is inside a write transaction).
    An implementation detail of the SQLite store, used only to aim the kill; False if there is no such file."""
    path = os.path.abspath(store_path) + ".writer-lock"
    if not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)        # closing drops the lock if we took it
    return False


def _warm(base: str) -> None:
    """Load the validators in every worker (they are loaded lazily), so timings are comparable."""
    def one(_):
        s = requests.Session()
        post(s, base, _bundle([{"resource": _observation(None, "Patient/x", "warm"),
                                "request": {"method": "POST", "url": "Observation"}}]))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)


def test_sigkill_mid_transaction_leaves_all_or_nothing(server_factory, tmp_path, record_property):
    assert BIG <= 10000          # MEDPORT_MAX_BUNDLE_ENTRIES' default (config.py) takes the bundle whole
    store = tmp_path / "kill.db"
    srv = server_factory(store)
    _warm(srv.base)
    s = session()

    # calibration: the same transaction, not interrupted, gives the time it takes
    system = f"{SYS}:kill:calibrate:{uuid.uuid4().hex}"
    t0 = time.monotonic()
    r = requests.post(srv.base, data=_big_transaction(system), headers=JSON_HEADERS, timeout=120)
    duration = time.monotonic() - t0
    assert r.status_code == 200, r.text[:2000]
    assert _count(s, srv.base, "Observation", {"identifier": f"{system}|"}) == BIG

    rng = random.Random()
    # kill at a random fraction of `duration` after sending, or aimed: while the writer lock is held
    # (mid-write), or just after it is released (committed, response not yet sent)
    bands = [(0.05, 0.6), "lock", "committed", (0.6, 1.2)]
    outcomes = []
    for rnd in range(KILL_ROUNDS):
        system = f"{SYS}:kill:{rnd}:{uuid.uuid4().hex}"
        data = _big_transaction(system)
        before = history_total(srv.base)
        flight = _InFlight(srv.base, data)
        assert flight.body.sent.wait(TIMEOUT), "the request was never sent"
        band = bands[rnd % len(bands)]
        sent_at = time.monotonic()
        committed = False
        if band in ("lock", "committed"):
            deadline = sent_at + 2 * duration + 5
            while not (held := _writer_lock_held(str(store))) and time.monotonic() < deadline \
                    and flight.thread.is_alive():
                time.sleep(0.002)
            how = f"writer lock held after {time.monotonic() - sent_at:.3f}s"
            if band == "committed":
                while _writer_lock_held(str(store)) and time.monotonic() < deadline:
                    time.sleep(0.001)
                how = f"writer lock released after {time.monotonic() - sent_at:.3f}s"
                committed = held
        else:
            delay = rng.uniform(*band) * duration
            time.sleep(delay)
            how = f"{delay:.3f}s after sending"
        srv.kill()
        flight.thread.join(TIMEOUT)
        answered = flight.response.status_code if flight.response is not None else None

        srv = server_factory(store)
        found = _count(s, srv.base, "Observation", {"identifier": f"{system}|"})
        after = history_total(srv.base)
        outcome = "all" if found == BIG else "none" if found == 0 else f"PARTIAL {found}"
        outcomes.append(f"round {rnd}: killed {how}: {outcome} (response: {answered})")
        assert found in (0, BIG), outcomes
        assert after - before == found, f"{outcomes[-1]}: history grew by {after - before}"
        if answered == 200 or committed:
            assert found == BIG, f"{outcomes[-1]}: a committed transaction was lost"
        if rnd + 1 < KILL_ROUNDS:
            _warm(srv.base)
    summary = Counter(o.split(": ")[2].split(" ")[0] for o in outcomes)
    record_property("sigkill_rounds", "; ".join(outcomes))
    print(f"\nSIGKILL rounds (transaction takes {duration:.2f}s): none={summary['none']} all={summary['all']}\n  "
          + "\n  ".join(outcomes))


# -- 3. Synthea over HTTP ----------------------------------------------------------------------------

def _walk_references(value, found: list) -> list:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            found.append(value["reference"])
        for v in value.values():
            _walk_references(v, found)
    elif isinstance(value, list):
        for v in value:
            _walk_references(v, found)
    return found


def _stored(s, base: str, types) -> dict[str, dict[str, dict]]:
    """What was loaded, by type (the server's own Provenance of each write left out)."""
    return {t: {e["resource"]["id"]: e["resource"] for e in all_entries(s, f"{base}/{t}", params={"_count": "1000"})
                if not is_server_provenance(e["resource"])} for t in types}


def _load(s, base: str, path: str) -> Counter:
    with open(path, "rb") as f:
        data = f.read()
    bundle = json.loads(data)
    r = s.post(base, data=data, headers=JSON_HEADERS, timeout=120)
    assert r.status_code == 200, f"{os.path.basename(path)}: {r.status_code} {r.text[:2000]}"
    statuses = Counter(e["response"]["status"].split()[0] for e in r.json()["entry"])
    assert statuses == Counter({"201": len(bundle["entry"])}), (os.path.basename(path), statuses)
    return Counter(e["resource"]["resourceType"] for e in bundle["entry"])


def _check_references(stored: dict[str, dict[str, dict]]) -> int:
    """Every reference is resolved to a stored resource: no 'Type?criteria', no urn:uuid: left."""
    ids = {(t, i) for t, rs in stored.items() for i in rs}
    checked, bad = 0, []
    for t, rs in stored.items():
        for rid, res in rs.items():
            for ref in _walk_references(res, []):
                if ref.startswith("#"):
                    continue
                checked += 1
                parts = ref.split("/")
                if "?" in ref or ref.startswith("urn:") or len(parts) != 2 or tuple(parts) not in ids:
                    bad.append((f"{t}/{rid}", ref))
    assert not bad, f"{len(bad)} unresolved references, e.g. {bad[:5]}"
    return checked


def test_synthea_bundles_load_over_http_with_every_reference_resolved(server_factory, tmp_path):
    srv = server_factory(tmp_path / "synthea.db")
    s = session()
    files_2021 = sorted(glob.glob(os.path.join(SYNTHEA_2021, "*.json")))     # 0-* first: name order
    assert os.path.basename(files_2021[0]).startswith("0-") and os.path.basename(files_2021[1]).startswith("0-")
    expected = Counter()
    for path in files_2021:
        expected += _load(s, srv.base, path)
    stored = _stored(s, srv.base, expected)
    assert Counter({t: len(rs) for t, rs in stored.items()}) == expected
    assert _check_references(stored) > 1000

    files_2019 = sorted(glob.glob(os.path.join(SYNTHEA_2019, "*.json")))
    assert len(files_2019) == 12
    before = {t: len(rs) for t, rs in _stored(s, srv.base, expected).items()}
    added = Counter()
    for path in files_2019:
        added += _load(s, srv.base, path)
    assert sum(added.values()) == 1692
    types = set(expected) | set(added)
    stored = _stored(s, srv.base, types)
    assert {t: len(rs) - before.get(t, 0) for t, rs in stored.items()} == {t: added.get(t, 0) for t in types}
    tagged = {t: _count(s, srv.base, t, {"_tag": "https://smarthealthit.org/tags|synthea-5-2019"}) for t in added}
    assert tagged == dict(added)
    assert _check_references(stored) > 3000
    # and the versions the server writes at start-up: NamingSystem/uhid and its definitions (conformance/seed.py)
    assert history_total(srv.base) == sum(expected.values()) + sum(added.values()) + 1 + len(seed.keys())


# -- 4. errors ---------------------------------------------------------------------------------------

def _issues_text(r: requests.Response) -> str:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return json.dumps(body["issue"])


def test_invalid_entry_is_400_naming_the_entry_and_stores_nothing(base):
    s = session()
    before = history_total(base)
    pat = f"urn:uuid:{uuid.uuid4()}"
    r = post(s, base, _bundle([
        {"fullUrl": pat, "resource": _patient(None, "ok"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": _observation(None, pat, "ok"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {**_patient(None, "bad"), "birthDate": "not-a-date"},
         "request": {"method": "POST", "url": "Patient"}},
    ]))
    assert r.status_code == 400, r.text
    assert "Bundle.entry[2]" in _issues_text(r)
    assert history_total(base) == before


def test_unresolvable_conditional_reference_is_412_naming_the_entry(base):
    s = session()
    ident = f"{SYS}:cond|{uuid.uuid4().hex}"
    before = history_total(base)
    entries = [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": _patient(None, "cond"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": _observation(None, f"Patient?identifier={ident}", "cond"),
         "request": {"method": "POST", "url": "Observation"}},
    ]
    r = post(s, base, _bundle(entries))
    assert r.status_code == 412, r.text
    assert "Bundle.entry[1]" in _issues_text(r)
    assert history_total(base) == before

    # two matches are as bad as none
    system, value = ident.split("|")
    for _ in range(2):
        p = {**_patient(None, "dup"), "identifier": [{"system": system, "value": value}]}
        assert post(s, f"{base}/Patient", p).status_code == 201
    before = history_total(base)
    r = post(s, base, _bundle(entries))
    assert r.status_code == 412, r.text
    assert "Bundle.entry[1]" in _issues_text(r)
    assert history_total(base) == before


def test_bundle_over_max_entries_is_413(server_factory, tmp_path):
    srv = server_factory(tmp_path / "small.db", env={"MEDPORT_MAX_BUNDLE_ENTRIES": "5"}, workers=1)
    s = session()

    def entries(n):
        return [{"resource": _patient(None, f"max-{i}"), "request": {"method": "POST", "url": "Patient"}}
                for i in range(n)]

    before = history_total(srv.base)        # the server's own NamingSystem/uhid
    for kind in ("transaction", "batch"):
        r = post(s, srv.base, _bundle(entries(6), kind))
        assert r.status_code == 413, (kind, r.text)
        _issues_text(r)
        assert history_total(srv.base) == before
    r = post(s, srv.base, _bundle(entries(5)))
    assert r.status_code == 200, r.text
    assert history_total(srv.base) == before + 5


# -- bugs found while writing this suite (fail until fixed) ------------------------------------------

def test_entries_that_resolve_to_the_same_resource_fail_the_transaction(base):
    """http.html#trules: "If any resource identities (including resolved identities from conditional
    update/delete) overlap in steps 1-3, then the transaction SHALL fail." Only literal Type/id urls
    are compared today (bundle_entries._no_duplicate_targets), before conditionals are resolved."""
    s = session()
    pid = f"tx-overlap-{uuid.uuid4().hex[:10]}"
    assert put(s, f"{base}/Patient/{pid}", {**_patient(pid, pid)}).status_code == 201
    criteria = f"Patient?identifier={SYS}|{pid}"
    before = history_total(base)
    two_updates = [
        {"resource": {**_patient(None, pid), "active": True}, "request": {"method": "PUT", "url": criteria}},
        {"resource": {**_patient(None, pid), "active": False}, "request": {"method": "PUT", "url": criteria}},
    ]
    r = post(s, base, _bundle(two_updates))
    # http.html#trules: overlapping identities SHALL fail the transaction; no status is fixed for it
    assert r.status_code in (400, 409, 412), f"{r.status_code}: both conditional PUTs were applied to Patient/{pid}"
    update_and_delete = [
        {"resource": _patient(pid, "put"), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"request": {"method": "DELETE", "url": criteria}},
    ]
    r = post(s, base, _bundle(update_and_delete))
    assert r.status_code in (400, 409, 412), f"{r.status_code}: Patient/{pid} was deleted and re-created"
    assert history_total(base) == before
    assert get(s, f"{base}/Patient/{pid}").json()["meta"]["versionId"] == "1"


def test_conditional_reference_error_names_the_entry_once(base):
    """references.resolve_conditional already prefixes its message with the entry, and
    transaction._decide's e.fail() prefixes it again: 'Bundle.entry[1]: Bundle.entry[1]: ...'."""
    s = session()
    r = post(s, base, _bundle([{"resource": _observation(None, f"Patient?identifier={SYS}|{uuid.uuid4().hex}", "x"),
                                "request": {"method": "POST", "url": "Observation"}}]))
    assert r.status_code == 412, r.text
    diagnostics = r.json()["issue"][0]["diagnostics"]
    assert diagnostics.count("Bundle.entry[0]") == 1, diagnostics


def test_duplicate_full_urls_are_refused(base):
    """Bundle invariant bdl-7: fullUrl must be unique in a bundle (unless meta.versionId differs).
    Today a reference to a duplicated urn:uuid silently points at the last entry with that fullUrl."""
    s = session()
    dup = f"urn:uuid:{uuid.uuid4()}"
    before = history_total(base)
    r = post(s, base, _bundle([
        {"fullUrl": dup, "resource": _patient(None, "first"), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": dup, "resource": _patient(None, "second"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": _observation(None, dup, "which"), "request": {"method": "POST", "url": "Observation"}},
    ]))
    assert r.status_code == 400, f"{r.status_code}: a bundle with a duplicated fullUrl was accepted"
    assert history_total(base) == before
