"""Signed checkpoints (fhirserver/audit_log/checkpoint.py): the C2SP tlog-checkpoint text, signed-note
key ids and Ed25519 signatures; every change to the text or the key is refused."""
from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fhirserver.audit_log import merkle
from fhirserver.audit_log.checkpoint import Checkpoint, key_id, sign, verify

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NAME = "medport.example/audit"
CP = Checkpoint("medport.example/audit-log", 3, merkle.root([merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"),
                                                             merkle.leaf_hash(b"c")]))


def test_the_text_is_a_c2sp_checkpoint_with_a_signed_note_line():
    text = sign(CP, KEY, NAME)
    body, signature = text.split("\n\n")
    assert body.split("\n") == ["medport.example/audit-log", "3", base64.b64encode(CP.root).decode()]
    dash, name, blob = signature.rstrip("\n").split(" ")
    assert dash == "\u2014" and name == NAME
    raw = base64.b64decode(blob)
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw[:4] == hashlib.sha256(NAME.encode() + b"\n\x01" + public).digest()[:4] == key_id(NAME, KEY.public_key())
    KEY.public_key().verify(raw[4:], (body + "\n").encode())       # signed: the note text with its newline
    assert verify(text, KEY.public_key(), NAME) == CP


@pytest.mark.parametrize("change", [
    lambda t: t.replace("\n3\n", "\n4\n"),
    lambda t: t.replace("audit-log", "audit-logs", 1),
    lambda t: t.replace(base64.b64encode(CP.root).decode(), base64.b64encode(b"\x00" * 32).decode()),
    lambda t: t.replace("\n\n", "\n"),
    lambda t: t.rsplit(" ", 1)[0] + " " + base64.b64encode(b"\x00" * 68).decode() + "\n",
])
def test_any_change_is_refused(change):
    with pytest.raises(ValueError):
        verify(change(sign(CP, KEY, NAME)), KEY.public_key(), NAME)


def test_another_key_or_name_is_refused():
    other = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    with pytest.raises(ValueError):
        verify(sign(CP, other, NAME), KEY.public_key(), NAME)
    with pytest.raises(ValueError):
        verify(sign(CP, KEY, "someone-else"), KEY.public_key(), NAME)
    with pytest.raises(ValueError):
        sign(CP, KEY, "has space")
