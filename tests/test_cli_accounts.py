"""`medport user ...` and `medport client ...`."""
from __future__ import annotations

import io
import json

import pytest
from joserfc.jwk import ECKey

from fhirserver.cli import main
from fhirserver.config import Settings
from fhirserver.smart_auth import passwords
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.clients import Clients
from fhirserver.storage import open_store

PW = "correct horse"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(passwords, "N", 2 ** 10)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/m.db"


@pytest.fixture
def store(url):
    s = open_store(Settings(store=url, sqlite_synchronous="NORMAL"))
    yield s
    s.close()


def stdin(monkeypatch, text):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_user_add_list_disable(url, store, monkeypatch, capsys):
    stdin(monkeypatch, PW + "\n")
    assert main(["user", "add", "asha", "--role", "patient", "--fhir-user", "Patient/1", "--password-stdin",
                 "--store", url]) == 0
    assert "user asha added (patient, Patient/1)" in capsys.readouterr().out
    assert Users(store).authenticate("asha", PW).fhir_user == "Patient/1"

    answers = iter([PW, PW])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "dr", "--role", "practitioner", "--fhir-user", "Practitioner/9",
                 "--organization", "Organization/5", "--store", url]) == 0
    assert Users(store).authenticate("dr", PW).organization == "Organization/5"
    capsys.readouterr()

    assert main(["user", "list", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "FHIR_USER", "ORGANIZATION", "DISABLED"]
    assert lines[1].split() == ["asha", "patient", "Patient/1", "-", "no"]
    assert lines[2].split() == ["dr", "practitioner", "Practitioner/9", "Organization/5", "no"]

    assert main(["user", "disable", "asha", "--store", url]) == 0
    assert Users(store).get("asha").disabled
    assert main(["user", "disable", "nobody", "--store", url]) == 1
    assert "error: no user 'nobody'" in capsys.readouterr().err


def test_user_add_errors(url, store, monkeypatch, capsys):
    answers = iter([PW, PW + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "root", "--role", "admin", "--store", url]) == 2
    assert "error: the passwords do not match" in capsys.readouterr().err

    stdin(monkeypatch, "short\n")
    assert main(["user", "add", "root", "--role", "admin", "--password-stdin", "--store", url]) == 2
    assert "error: password must be at least 8 characters" in capsys.readouterr().err

    stdin(monkeypatch, PW + "\n")
    assert main(["user", "add", "asha", "--role", "patient", "--password-stdin", "--store", url]) == 2
    assert "error: a patient needs a fhir_user" in capsys.readouterr().err

    for _ in range(2):
        stdin(monkeypatch, PW + "\n")
        code = main(["user", "add", "root", "--role", "admin", "--password-stdin", "--store", url])
    assert code == 2 and "already taken" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["user", "add", "x", "--role", "nurse", "--store", url])
    assert e.value.code == 2
    assert [u.username for u in Users(store).list()] == ["root"]


def test_client_add_list_disable(url, store, tmp_path, capsys):
    assert main(["client", "add", "Viewer", "--type", "public", "--redirect-uri", "https://app.example/cb",
                 "--redirect-uri", "http://localhost:3000/cb", "--scope", "openid fhirUser patient/*.rs",
                 "--store", url]) == 0
    out = capsys.readouterr().out
    viewer = Clients(store).get(out.split("client_id: ")[1].split()[0])
    assert viewer.redirect_uris == ["https://app.example/cb", "http://localhost:3000/cb"]
    assert viewer.scopes == ["openid", "fhirUser", "patient/*.rs"] and "secret" not in out

    assert main(["client", "add", "Portal", "--type", "confidential-symmetric", "--redirect-uri",
                 "https://portal.example/cb", "--scope", "user/*.rs", "--store", url]) == 0
    out = capsys.readouterr().out
    portal = Clients(store).get(out.split("client_id: ")[1].split()[0])
    secret = out.split("client_secret: ")[1].split()[0]
    assert "shown once" in out and Clients(store).check_secret(portal, secret)

    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [ECKey.generate_key("P-384").as_dict(private=False)]}))
    assert main(["client", "add", "Lab feed", "--type", "confidential-asymmetric", "--jwks", str(jwks_file),
                 "--scope", "system/Observation.cu", "--organization", "Organization/5", "--store", url]) == 0
    lab_id = capsys.readouterr().out.split("client_id: ")[1].split()[0]
    lab = Clients(store).get(lab_id)
    assert lab.jwks["keys"][0]["kty"] == "EC" and lab.organization == "Organization/5" and lab.redirect_uris == []

    assert main(["client", "list", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CLIENT_ID", "TYPE", "NAME", "ORGANIZATION", "DISABLED", "SCOPES"]
    assert [line.split()[0] for line in lines[1:]] == [lab_id, portal.client_id, viewer.client_id]  # by name

    assert main(["client", "disable", portal.client_id, "--store", url]) == 0
    assert Clients(store).get(portal.client_id).disabled
    assert main(["client", "disable", "unknown", "--store", url]) == 1
    assert "error: no client 'unknown'" in capsys.readouterr().err


def test_client_add_errors(url, store, tmp_path, capsys):
    assert main(["client", "add", "App", "--type", "public", "--redirect-uri", "https://a.example/cb#x",
                 "--store", url]) == 2
    assert "error: redirect URI" in capsys.readouterr().err
    assert main(["client", "add", "App", "--type", "public", "--redirect-uri", "https://a.example/cb",
                 "--scope", "patient/Observation.sr", "--store", url]) == 2
    assert "error: permissions in" in capsys.readouterr().err
    assert main(["client", "add", "App", "--type", "confidential-asymmetric", "--store", url]) == 2
    assert "exactly one of jwks and jwks_uri" in capsys.readouterr().err
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ECKey.generate_key("P-384").as_dict(private=True)]}))
    assert main(["client", "add", "App", "--type", "confidential-asymmetric", "--jwks", str(private),
                 "--store", url]) == 2
    assert "public keys only" in capsys.readouterr().err
    assert main(["client", "add", "App", "--type", "confidential-asymmetric", "--jwks", str(tmp_path / "none"),
                 "--store", url]) == 2
    assert "cannot read a JWKS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["client", "add", "App", "--type", "confidential-asymmetric", "--jwks", str(private),
              "--jwks-uri", "https://k.example/j", "--store", url])
    assert e.value.code == 2
    assert Clients(store).list() == []


def test_keys_rotate_keeps_earlier_tokens_valid(tmp_path, capsys):
    from fhirserver.smart_auth import tokens
    from fhirserver.smart_auth.keys import SigningKeys
    from fhirserver.storage.sqlite import SqliteStore
    url = f"sqlite:///{tmp_path}/k.db"
    assert main(["keys", "rotate", "--store", url]) == 0
    store = SqliteStore(str(tmp_path / "k.db"), synchronous="NORMAL")
    base = "http://fhir.test/fhir"
    old, _ = tokens.issue(SigningKeys(store), base, base, "u", "app", "system/*.rs")
    assert main(["keys", "rotate", "--store", url]) == 0
    new, _ = tokens.issue(SigningKeys(store), base, base, "u", "app", "system/*.rs")
    assert old.split(".")[0] != new.split(".")[0]                 # a different kid in the header
    for token in (old, new):                                      # no downtime: both verify
        assert tokens.verify(SigningKeys(store), store, token, base, base)["sub"] == "u"
    capsys.readouterr()
    assert main(["keys", "list", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].split()[-1] != "-" and lines[2].split()[-1] == "-"


def test_client_ids_never_look_like_options(tmp_path, monkeypatch):
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    store = Settings(store=f"sqlite:///{tmp_path}/c.db")
    from fhirserver.storage import open_store
    clients = Clients(open_store(store))
    ids = [clients.add(f"app{i}", "public", ["https://app.example/cb"])[0].client_id for i in range(200)]
    assert not [i for i in ids if not i[0].isalnum()]
