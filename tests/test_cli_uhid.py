"""`medport uhid check|backfill` and `medport card issue|verify|rotate-key`, run as the CLI runs them."""
from __future__ import annotations

import json

import pytest

from fhirserver.cli import main
from fhirserver.config import Settings
from fhirserver.context import ServerContext
from fhirserver.health_cards import jws
from fhirserver.health_cards.issuer_keys import IssuerKeys
from fhirserver.interactions import create as create_i
from fhirserver.storage import open_store
from fhirserver.storage.base import Write
from tests._uhid import uhid_for

BASE = "http://desk.test/fhir"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDPORT_STORE", f"sqlite:///{tmp_path}/m.db")
    monkeypatch.setenv("MEDPORT_BASE_URL", BASE)
    settings = Settings.from_env()
    store = open_store(settings)
    ctx = ServerContext(settings, store)
    pid = create_i.create(ctx, "Patient", {"resourceType": "Patient", "name": [{"family": "Rao", "given": ["Lata"]}],
                                           "birthDate": "1948-07-09"}).version.id
    yield ctx, pid
    store.close()


def test_uhid_check(capsys):
    good = uhid_for("cli")
    assert main(["uhid", "check", good.replace("-", " ")]) == 0 and capsys.readouterr().out.strip() == good
    assert main(["uhid", "check", good[:-1] + str((int(good[-1]) + 1) % 10)]) == 1
    assert "check digit" in capsys.readouterr().err


def test_issue_then_verify_a_file_and_a_qr_text_offline(env, tmp_path, capsys):
    ctx, pid = env
    out, png = tmp_path / "card.smart-health-card", tmp_path / "card.png"
    assert main(["card", "issue", pid, "--out", str(out), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["card", "verify", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("VALID") and "name: Lata Rao" in text and "birth date: 1948-07-09" in text and "UHID: " in text
    [card] = json.loads(out.read_text())["verifiableCredential"]
    from fhirserver.health_cards.qr import to_numeric
    assert main(["card", "verify", to_numeric(card)]) == 0
    capsys.readouterr()
    # a tampered file: the payload of another card under this card's signature
    other = jws.sign(jws.parse(card)[1] | {"nbf": 1}, IssuerKeys(ctx.store).active()).split(".")[1]
    head, _, sig = card.split(".")
    out.write_text(json.dumps({"verifiableCredential": [f"{head}.{other}.{sig}"]}))
    assert main(["card", "verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert text.startswith("INVALID") and "changed after it was signed" in text and "name:" not in text


def test_rotation_keeps_old_cards_valid_and_foreign_issuers_need_trust(env, tmp_path, capsys):
    ctx, pid = env
    out = tmp_path / "card.json"
    assert main(["card", "issue", pid, "--out", str(out)]) == 0
    assert main(["card", "rotate-key"]) == 0
    assert main(["card", "verify", str(out)]) == 0
    capsys.readouterr()
    # a card of another Med-Port (another base URL): untrusted, until its keys are given
    [card] = json.loads(out.read_text())["verifiableCredential"]
    foreign = jws.sign(jws.parse(card)[1] | {"iss": "https://other.test/fhir"}, IssuerKeys(ctx.store).active())
    assert main(["card", "verify", foreign]) == 1 and "not trusted" in capsys.readouterr().out
    keys = tmp_path / "other.jwks"
    keys.write_text(json.dumps(IssuerKeys(ctx.store).jwks()))
    assert main(["card", "verify", foreign, "--trust", f"https://other.test/fhir={keys}"]) == 0


def test_backfill_gives_old_patients_a_uhid_once(env, capsys):
    ctx, _pid = env
    with ctx.store.transaction() as tx:
        tx.write(Write("Patient", "legacy", 1, "2020-01-01T00:00:00.000000Z", "PUT",
                       b'{"resourceType":"Patient","id":"legacy","meta":{"versionId":"1"}}'))
    assert main(["uhid", "backfill"]) == 0 and "1 patient(s)" in capsys.readouterr().out
    assert main(["uhid", "backfill"]) == 0 and "0 patient(s)" in capsys.readouterr().out
    body = json.loads(ctx.store.read("Patient", "legacy").body)
    assert [i["system"] for i in body["identifier"]] == [f"{BASE}/sid/uhid"]


def test_backfill_reports_a_patient_it_cannot_fix(env, capsys):
    ctx, _pid = env
    with ctx.store.transaction() as tx:      # an identifier under the UHID system that is not a UHID
        tx.write(Write("Patient", "odd", 1, "2020-01-01T00:00:00.000000Z", "PUT", json.dumps(
            {"resourceType": "Patient", "id": "odd", "identifier": [{"system": f"{BASE}/sid/uhid", "value": "12"}]}
        ).encode()))
        tx.write(Write("Patient", "plain", 1, "2020-01-01T00:00:00.000000Z", "PUT",
                       b'{"resourceType":"Patient","id":"plain"}'))
    assert main(["uhid", "backfill"]) == 1
    out, err = capsys.readouterr()
    assert "1 patient(s)" in out and "Patient/odd left as it is" in err and "12" in err


def test_revoke_from_the_cli(env, tmp_path, capsys):
    ctx, pid = env
    out = tmp_path / "card.json"
    assert main(["card", "issue", pid, "--out", str(out)]) == 0
    assert main(["card", "revoke", pid]) == 0 and "revoked" in capsys.readouterr().out
    assert main(["card", "verify", str(out)]) == 1 and "revoked by its issuer" in capsys.readouterr().out
    assert main(["card", "revoke", "nobody"]) == 2
