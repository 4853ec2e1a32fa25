"""Merkle tree hashes and proofs of RFC 9162 (Certificate Transparency 2.0), section 2.1.

    leaf hash  = SHA-256(0x00 || entry)
    node hash  = SHA-256(0x01 || left || right)
    MTH of n > 1 leaves: split at k, the largest power of two smaller than n
    MTH of no leaves: SHA-256 of the empty string

Everything here works on leaf hashes, iteratively (a log of millions of entries is hashed in one pass
with a stack of perfect subtrees), and the verifiers follow the algorithms of 2.1.3.2 and 2.1.4.2, so
a client needs only this module to check an inclusion or consistency proof against a checkpoint.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: Iterable[bytes]) -> bytes:
    """MTH of the leaf hashes, in one pass: a stack of the roots of perfect subtrees (a compact range),
    folded from the right at the end."""
    stack: list[tuple[int, bytes]] = []           # (height, hash), heights strictly decreasing
    for leaf in leaves:
        height, h = 0, leaf
        while stack and stack[-1][0] == height:
            h = node_hash(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
    if not stack:
        return EMPTY_ROOT
    acc = stack[-1][1]
    for _height, h in reversed(stack[:-1]):
        acc = node_hash(h, acc)
    return acc


def _subtree(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    return root(leaves[lo:hi])


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of 2.1.3.1: the sibling subtree hashes from the leaf up."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"index {index} is outside a tree of {len(leaves)}")
    proof: list[bytes] = []
    lo, hi = 0, len(leaves)
    path: list[bytes] = []
    while hi - lo > 1:                            # walk down, remembering the other side
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(_subtree(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree(leaves, lo, lo + k))
            lo = lo + k
    proof.extend(reversed(path))
    return proof


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of 2.1.4.1 for the first old_size leaves against all of them."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"no consistency proof from size {old_size} to {n}")
    proof: list[bytes] = []
    lo, hi, m, complete = 0, n, old_size, True
    while True:                                   # SUBPROOF(m, D[lo:hi], complete), unrolled
        if m == hi - lo:
            if not complete:
                proof.append(_subtree(leaves, lo, hi))
            break
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            proof.append(_subtree(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_subtree(leaves, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return list(reversed(proof))


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """2.1.3.2: whether `leaf` is entry `index` of the tree of `size` entries with this root."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """2.1.4.2: whether the tree of size2 with root2 extends the tree of size1 with root1."""
    if size1 == size2:
        return not proof and root1 == root2
    if not 0 < size1 < size2 or not proof:
        return False
    proof = list(proof)
    if size1 & (size1 - 1) == 0:                  # a power of two: the old root starts the path
        proof.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2
