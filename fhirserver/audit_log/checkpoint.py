"""Signed checkpoints of the audit log in the C2SP tlog-checkpoint format, as a C2SP signed note with an
Ed25519 signature (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note):

    <origin>\\n
    <tree size, decimal>\\n
    <root hash, base64>\\n
    \\n
    \\u2014 <key name> <base64(key id (4 bytes) || Ed25519 signature (64 bytes))>\\n

The signature covers the note text: the lines before the blank line, each ending in a newline. The key
id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || the 32-byte public key) (signed-note's
Ed25519 type 0x01), so a verifier picks the key by name and id. A regulator keeps a checkpoint; a later
one must be consistent with it (merkle.verify_consistency).
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DASH = "\u2014"
ED25519 = b"\x01"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The note text the signatures cover."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw).digest()[:4]


def sign(checkpoint: Checkpoint, key: Ed25519PrivateKey, name: str) -> str:
    """The signed checkpoint text."""
    _check_name(name)
    body = checkpoint.body()
    signature = key.sign(body.encode())
    blob = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
    return f"{body}\n{DASH} {name} {blob}\n"


def verify(text: str, public_key: Ed25519PublicKey, name: str) -> Checkpoint:
    """The checkpoint, if `text` is well formed and carries a valid signature by this key; else ValueError
    naming what is wrong."""
    body, sep, signatures = text.partition("\n\n")
    if not sep:
        raise ValueError("not a signed note: no blank line before the signatures")
    lines = body.split("\n")
    if len(lines) < 3:
        raise ValueError("a checkpoint has an origin, a tree size and a root hash")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not size.isascii() or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise ValueError(f"bad origin or tree size {size!r}")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except ValueError:
        raise ValueError("the root hash is not base64") from None
    if len(root_hash) != 32:
        raise ValueError("the root hash is not 32 bytes")
    wanted = key_id(name, public_key)
    for line in signatures.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise ValueError(f"bad signature line {line!r}")
        if parts[1] != name:
            continue
        blob = base64.b64decode(parts[2], validate=True)
        if blob[:4] != wanted:
            continue
        try:
            public_key.verify(blob[4:], (body + "\n").encode())
        except InvalidSignature:
            raise ValueError(f"the signature of {name} does not match the checkpoint") from None
        return Checkpoint(origin, int(size), root_hash)
    raise ValueError(f"no signature by {name} (key id {wanted.hex()})")


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise ValueError(f"a key name has no spaces or '+': {name!r}")
