"""Security issue 12, finding 15: wrong passwords slow down the address that sends them (growing
delays, 429 with Retry-After) instead of locking the account for everyone; distributed guessing is
still bounded per account. On every store; the clock is moved instead of waiting."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth import accounts
from fhirserver.smart_auth.accounts import LoginThrottled, Users, client_key
from tests.smart_auth.test_oauth_helpers import PASSWORD, begin, csrf, make_world

ATTACKER, VICTIM = "203.0.113.66", "198.51.100.7"


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend=backend)
    w.users.add("drwho", PASSWORD, "practitioner", fhir_user="Practitioner/9")
    w.client, _ = w.app_client()
    return w


@pytest.fixture
def clock(monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(accounts.time, "time", lambda: now[0])
    return now


def _login(world, address, username="drwho", password="wrong password"):
    http, request_id = begin(world, world.client.client_id, "user/*.rs")
    env = {"REMOTE_ADDR": address}
    page = http.get(f"/auth/login?request={request_id}", environ_base=env).get_data(as_text=True)
    return http.post("/auth/login", environ_base=env, data={"csrf": csrf(page), "request": request_id,
                                                            "username": username, "password": password})


def test_an_attacker_elsewhere_cannot_lock_the_user_out(world, clock):
    statuses = [_login(world, ATTACKER).status_code for _ in range(20)]
    assert statuses[:3] == [401, 401, 401] and set(statuses[3:]) == {429}      # the attacker is slowed
    r = _login(world, VICTIM, password=PASSWORD)                                # the user is not
    assert r.status_code == 303 and "/auth/consent" in r.headers["Location"]


def test_delays_grow_per_address_and_are_capped(world, clock):
    for _ in range(3):
        assert _login(world, ATTACKER).status_code == 401
    waits = []
    for _ in range(14):
        r = _login(world, ATTACKER)
        assert r.status_code == 429 and "Too many failed sign-in attempts" in r.get_data(as_text=True)
        wait = int(r.headers["Retry-After"])
        waits.append(wait)
        clock[0] += wait
        assert _login(world, ATTACKER).status_code == 401          # allowed once the delay has passed
    assert waits[:5] == [1, 2, 4, 8, 16] and waits[-1] == accounts.MAX_DELAY_S
    assert all(a <= b for a, b in zip(waits, waits[1:])) and max(waits) == accounts.MAX_DELAY_S
    # a refused (too early) attempt is not counted: the wait does not grow by retrying early
    assert int(_login(world, ATTACKER).headers["Retry-After"]) == accounts.MAX_DELAY_S


def test_unknown_usernames_are_answered_alike(world, clock):
    known = [_login(world, ATTACKER).status_code for _ in range(4)]
    unknown = [_login(world, ATTACKER, username="nobody").status_code for _ in range(4)]
    assert known == unknown == [401, 401, 401, 429]


def test_a_success_clears_only_its_own_address(world, clock):
    for _ in range(3):
        _login(world, ATTACKER)
        _login(world, VICTIM)
    clock[0] += 1
    assert _login(world, VICTIM, password=PASSWORD).status_code == 303
    assert [_login(world, VICTIM).status_code for _ in range(3)] == [401, 401, 401]   # afresh
    assert _login(world, ATTACKER).status_code == 401 and _login(world, ATTACKER).status_code == 429


def test_distributed_guessing_is_bounded_per_account(ctx, clock):
    users = Users(ctx.store, account_limit=6)
    users.add("asha", PASSWORD, "patient", "Patient/1")
    for i in range(6):
        assert users.authenticate("asha", "wrong", f"192.0.2.{i}") is None
    with pytest.raises(LoginThrottled) as e:
        users.authenticate("asha", PASSWORD, "192.0.2.200")          # a fresh address, the right password
    assert 0 < e.value.retry_after <= accounts.ACCOUNT_WINDOW_S
    clock[0] += accounts.ACCOUNT_WINDOW_S + 1
    assert users.authenticate("asha", PASSWORD, "192.0.2.200") is not None


def test_addresses_are_counted_per_ipv4_host_and_ipv6_64():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.1") != client_key("192.0.2.2")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1" and client_key(None) == client_key("junk") == "-"
