"""RFC 9162 section 2.1 (fhirserver/audit_log/merkle.py): the RFC 6962 test vectors, and for every tree
size 1..300 inclusion and consistency proofs that equal those of an independent naive implementation
(the RFC's recursive definitions, written out here) and that the verifiers accept, while any changed
hash, index or size is refused."""
from __future__ import annotations

import hashlib
import random

import pytest

from fhirserver.audit_log import merkle

# the leaves and roots of the RFC 6962 reference tests (Certificate Transparency's merkle_tree_test)
VECTOR_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
                 bytes(range(0x60, 0x70))]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# ---- the naive implementation: RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1, recursively, on the entries ----

def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(d: list[bytes]) -> bytes:
    if not d:
        return h(b"")
    if len(d) == 1:
        return h(b"\x00" + d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


ENTRIES = [f"entry {i}".encode() for i in range(300)]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]


def picks(n: int, rng: random.Random) -> list[int]:
    """Every position of small trees; the edges and a random sample of larger ones."""
    if n <= 40:
        return list(range(n))
    return sorted({0, 1, n // 2, n - 2, n - 1, *rng.sample(range(n), 6)})


def test_the_rfc_6962_vectors():
    leaves = [merkle.leaf_hash(x) for x in VECTOR_LEAVES]
    assert merkle.root([]).hex().startswith("e3b0c442") and merkle.root([]).hex().endswith("b855")
    assert merkle.leaf_hash(b"").hex() == VECTOR_ROOTS[0]
    for n in range(1, 9):
        assert merkle.root(leaves[:n]).hex() == VECTOR_ROOTS[n - 1]
        assert mth(VECTOR_LEAVES[:n]).hex() == VECTOR_ROOTS[n - 1]


@pytest.mark.parametrize("n", range(1, 301))
def test_proofs_of_every_tree_size_agree_with_the_naive_ones_and_verify(n):
    rng = random.Random(n)
    leaves, entries = LEAVES[:n], ENTRIES[:n]
    top = merkle.root(leaves)
    assert top == mth(entries)
    for i in picks(n, rng):
        proof = merkle.inclusion_proof(leaves, i)
        assert proof == path(i, entries)
        assert merkle.verify_inclusion(i, n, leaves[i], proof, top)
        assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"forged"), proof, top)
        if n > 1:
            assert not merkle.verify_inclusion((i + 1) % n, n, leaves[i], proof, top)
    for m in picks(n, rng):
        m += 1                                     # sizes 1..n
        proof = merkle.consistency_proof(leaves, m)
        assert proof == (subproof(m, entries, True) if m < n else [])
        old = merkle.root(leaves[:m])
        assert merkle.verify_consistency(m, n, old, top, proof)
        if m < n:
            assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"x"), top, proof)
            assert not merkle.verify_consistency(m, n, old, merkle.leaf_hash(b"x"), proof)
            if proof:
                bad = list(proof)
                bad[-1] = merkle.leaf_hash(b"tampered")
                assert not merkle.verify_consistency(m, n, old, top, bad)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        merkle.inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError):
        merkle.consistency_proof(LEAVES[:3], 0)
    assert not merkle.verify_inclusion(5, 3, LEAVES[0], [], merkle.root(LEAVES[:3]))
    assert not merkle.verify_consistency(3, 2, merkle.root(LEAVES[:3]), merkle.root(LEAVES[:2]), [b"x"])
