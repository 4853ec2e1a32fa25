"""The audit log's signing keys (Ed25519), kept like the server's other keys: records of kind KIND in
the store (every process signs with the same key), created on first use, rotated with `medport audit
rotate-key`. The newest key signs; older keys are kept (public and private parts, like the health card
issuer keys) so that every checkpoint ever signed stays verifiable."""
from __future__ import annotations

import base64
import secrets
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from . import checkpoint as cp

KIND = "audit-log-key"


class AuditKeys:
    def __init__(self, store):
        self.store = store

    def active(self) -> tuple[Ed25519PrivateKey, str]:
        """(the newest key, its id), created on first use."""
        records = self._records()
        if not records:
            return self.rotate()
        kid, value = max(records, key=lambda r: (r[1]["created"], r[0]))
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(value["private"])), kid

    def rotate(self) -> tuple[Ed25519PrivateKey, str]:
        key = Ed25519PrivateKey.generate()
        kid = secrets.token_hex(8)
        private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.store.put_record(KIND, kid, {"private": base64.b64encode(private).decode(),
                                          "public": base64.b64encode(public).decode(), "created": time.time()})
        return key, kid

    def public_keys(self) -> list[tuple[str, Ed25519PublicKey]]:
        return [(kid, Ed25519PublicKey.from_public_bytes(base64.b64decode(v["public"])))
                for kid, v in self._records()]

    def verify(self, text: str) -> cp.Checkpoint:
        """The checkpoint if one of the log's keys signed it (under its origin as key name), else ValueError."""
        name = text.split("\n", 1)[0]
        problems = []
        for _kid, public in self.public_keys():
            try:
                return cp.verify(text, public, name)
            except ValueError as e:
                problems.append(str(e))
        raise ValueError("no key of this log signed the checkpoint" + (f" ({problems[0]})" if problems else ""))

    def _records(self) -> list[tuple[str, dict]]:
        return self.store.list_records(KIND)
