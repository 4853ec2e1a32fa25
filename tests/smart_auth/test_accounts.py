"""User accounts: validation, login, throttling, timing-safe unknown users, rehash on login."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth import accounts, passwords
from fhirserver.smart_auth.accounts import LoginThrottled, User, Users
from fhirserver.storage.sqlite import SqliteStore

PW = "correct horse"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(passwords, "N", 2 ** 10)


@pytest.fixture
def store(tmp_path):
    return SqliteStore(str(tmp_path / "t.db"), synchronous="NORMAL")


@pytest.fixture
def users(store):
    return Users(store, free_failures=3, account_limit=10, account_window_s=60)


def test_add_get_list_public(users, store):
    asha = users.add("asha", PW, "patient", "Patient/123")
    users.add("dr.bo@clinic", PW, "practitioner", "Practitioner/9", organization="Organization/5")
    users.add("root", PW, "admin")
    assert users.get("asha") == asha and asha.password_hash.startswith("scrypt$") and PW not in asha.password_hash
    assert [u.username for u in users.list()] == ["asha", "dr.bo@clinic", "root"]
    assert users.get("nobody") is None
    assert asha.public() == {"username": "asha", "role": "patient", "fhir_user": "Patient/123",
                             "organization": None, "disabled": False}
    assert store.get_record("user", "asha")["password_hash"] == asha.password_hash


@pytest.mark.parametrize("args, message", [
    (("bad name", PW, "admin"), "username"),
    (("", PW, "admin"), "username"),
    (("x" * 65, PW, "admin"), "username"),
    (("ok\n", PW, "admin"), "username"),
    (("ok", PW, "nurse"), "role"),
    (("ok", PW, "patient"), "needs a fhir_user"),
    (("ok", PW, "practitioner"), "needs a fhir_user"),
    (("ok", PW, "patient", "Practitioner/1"), "must be a Patient"),
    (("ok", PW, "practitioner", "Patient/1"), "must be a Practitioner"),
    (("ok", PW, "patient", "Patient"), "Type/id"),
    (("ok", PW, "patient", "Patient/a b"), "Type/id"),
    (("ok", PW, "patient", "http://x/Patient/1"), "Type/id"),
    (("ok", PW, "admin", "Organization/1"), "must be one of"),
    (("ok", PW, "practitioner", "Practitioner/1", "Location/2"), "organization"),
    (("ok", "short77", "admin"), "at least 8"),
])
def test_add_refusals(users, args, message):
    with pytest.raises(ValueError, match=message):
        users.add(*args)
    assert users.list() == []


def test_duplicate_username(users):
    users.add("asha", PW, "patient", "Patient/1")
    with pytest.raises(ValueError, match="already taken"):
        users.add("asha", "another password", "admin")
    assert users.get("asha").role == "patient"


def test_authenticate(users):
    users.add("asha", PW, "patient", "Patient/1")
    assert users.authenticate("asha", PW).fhir_user == "Patient/1"
    assert users.authenticate("asha", PW + "!") is None
    assert users.authenticate("nobody", PW) is None


def test_unknown_user_costs_one_hash(users, monkeypatch):
    users.add("asha", PW, "patient", "Patient/1")
    users.authenticate("ghost", PW)            # the first call may build the dummy hash
    calls = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda pw, stored: calls.append(stored) or real(pw, stored))
    assert users.authenticate("ghost", PW) is None
    assert users.authenticate("asha", "wrong password") is None
    assert len(calls) == 2 and calls[0].startswith(f"scrypt${passwords.N}$")   # same cost as a real hash


def test_disabled_user_cannot_log_in(users):
    users.add("asha", PW, "patient", "Patient/1")
    assert users.disable("asha") and users.get("asha").disabled
    assert users.authenticate("asha", PW) is None
    assert not users.disable("nobody")


def test_throttling_and_reset(users, store, monkeypatch):
    users.add("asha", PW, "patient", "Patient/1")
    now = accounts.time.time()
    monkeypatch.setattr(accounts.time, "time", lambda: now)
    for _ in range(3):
        assert users.authenticate("asha", "wrong password", "192.0.2.1") is None
    with pytest.raises(LoginThrottled) as e:
        users.authenticate("asha", PW, "192.0.2.1")       # even the right password, from that address
    assert e.value.retry_after == 1
    with pytest.raises(LoginThrottled):
        users.authenticate("ASHA", PW, "192.0.2.1")       # counted per lower-cased username
    assert users.authenticate("asha", PW, "192.0.2.2") is not None       # another address is not slowed
    monkeypatch.setattr(accounts.time, "time", lambda: now + 1)          # the delay has passed
    assert users.authenticate("asha", PW, "192.0.2.1") is not None


def test_success_clears_failures(users, store):
    users.add("asha", PW, "patient", "Patient/1")
    for _ in range(2):
        users.authenticate("asha", "wrong password", "192.0.2.1")
    assert len(store.list_records("login-pair:asha|192.0.2.1")) == 2
    assert len(store.list_records("login-failures:asha")) == 2
    assert users.authenticate("asha", PW, "192.0.2.1") is not None
    assert store.list_records("login-pair:asha|192.0.2.1") == []
    assert len(store.list_records("login-failures:asha")) == 2        # the per-account bound keeps them
    for _ in range(2):
        users.authenticate("asha", "wrong password", "192.0.2.1")
    assert users.authenticate("asha", PW, "192.0.2.1") is not None      # 2 + 2 failures never reached 3 in a row


def test_unknown_and_disabled_users_are_throttled_too(users):
    for _ in range(3):
        assert users.authenticate("ghost", PW) is None
    with pytest.raises(LoginThrottled):
        users.authenticate("ghost", PW)


def test_account_failures_slide_out_of_the_window(users, monkeypatch):
    users.add("asha", PW, "patient", "Patient/1")
    t = [1000.0]
    monkeypatch.setattr(accounts.time, "time", lambda: t[0])
    for step in range(10):
        t[0] = 1000.0 + step * 5
        users.authenticate("asha", "wrong password", f"192.0.2.{step}")
    t[0] = 1050.0
    with pytest.raises(LoginThrottled) as e:
        users.authenticate("asha", PW, "192.0.2.99")
    assert e.value.retry_after == 10                    # the failure at 1000 leaves the window at 1060
    t[0] = 1061.0
    assert users.authenticate("asha", PW, "192.0.2.99") is not None


def test_rehash_on_login_when_cost_raised(users, monkeypatch):
    old = users.add("asha", PW, "patient", "Patient/1").password_hash
    monkeypatch.setattr(passwords, "N", 2 ** 11)
    assert users.authenticate("asha", PW) is not None
    new = users.get("asha").password_hash
    assert new != old and new.startswith(f"scrypt${2 ** 11}$") and passwords.verify_password(PW, new)
    assert users.authenticate("asha", PW) is not None and users.get("asha").password_hash == new


def test_user_round_trips_through_the_store(users):
    u = users.add("dr", PW, "practitioner", "Practitioner/9", "Organization/5")
    assert isinstance(users.get("dr"), User) and users.get("dr") == u
