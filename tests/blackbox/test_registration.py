"""People registering at the same moment on a real server (two worker processes, threads each):
every one gets their own UHID and account; each card verifies."""
from __future__ import annotations

import concurrent.futures
import re

import requests

from fhirserver.uhid import number
from tests._uhid import TEST_SYSTEM

from ._server import TIMEOUT, get, session

N = 24


def _register(root: str, n: int) -> requests.Response:
    return requests.post(f"{root}/api/registrations", timeout=TIMEOUT, json={
        "given": f"Person{n}", "family": "Concurrent", "birthDate": "1990-01-01", "gender": "other",
        "phone": f"+91 90000 {n:05d}", "password": "a long password"})


def _codes(store_url: str) -> dict[str, str]:
    """The registration code sent to each phone (read from the outbox, as an SMS gateway would)."""
    from fhirserver import outbox
    from fhirserver.config import Settings
    from fhirserver.storage import open_store
    store = open_store(Settings(store=store_url))
    try:
        return {m["to"]: re.search(r"code is (\S+?)\.", m["body"]).group(1) for _id, m in outbox.messages(store)}
    finally:
        store.close()


def test_concurrent_registrations_never_share_a_uhid(server_factory, tmp_path):
    server = server_factory(tmp_path / "reg.db", env={"MEDPORT_REGISTRATION_LIMIT": str(2 * N)})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert {r.status_code for r in pool.map(lambda n: _register(server.root, n), range(N))} == {202}
    codes = _codes(server.store_url)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: requests.post(f"{server.root}/api/registrations/confirm", timeout=TIMEOUT,
                                                        json={"code": codes[f"+91 90000 {n:05d}"]}), range(N)))
    assert [r.status_code for r in answers] == [201] * N, [r.text[:200] for r in answers if r.status_code != 201]
    uhids = [r.json()["uhid"] for r in answers]
    assert len(set(uhids)) == N and all(number.canonical(u) == u for u in uhids)
    s = session()
    for r in answers[:6]:
        found = get(s, f"{server.base}/Patient", params={"identifier": f"{TEST_SYSTEM}|{r.json()['uhid']}"})
        assert found.json()["total"] == 1 and found.json()["entry"][0]["fullUrl"].endswith(r.json()["patient"])
        v = requests.post(f"{server.base}/$verify-health-card", json={"qr": r.json()["qr"]}, timeout=TIMEOUT)
        assert v.json()["parameter"][0] == {"name": "valid", "valueBoolean": True}
