"""scrypt password hashes: verify, reject, salted, upgradeable."""
from __future__ import annotations

from fhirserver.smart_auth import passwords


def test_hash_and_verify():
    stored = passwords.hash_password("correct horse battery staple")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert passwords.verify_password("correct horse battery staple", stored)
    assert not passwords.verify_password("Correct horse battery staple", stored)
    assert stored != passwords.hash_password("correct horse battery staple")      # salted
    assert not passwords.verify_password("x", "garbage") and not passwords.verify_password("x", "md5$1$2$3$4$5")
    assert not passwords.needs_rehash(stored)
    assert passwords.needs_rehash(stored.replace(f"${passwords.N}$", "$1024$", 1))
