"""The `medport` command line, run as a subprocess."""
from __future__ import annotations

import os
import subprocess

from ._server import MEDPORT, free_port


def _run(args, env_extra=None, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPORT_")}
    env.update(env_extra or {})
    return subprocess.run([MEDPORT, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def test_version():
    r = _run(["--version"])
    assert r.returncode == 0
    out = r.stdout + r.stderr
    assert out.startswith("medport ") and out.split()[1][0].isdigit()


def test_serve_with_an_unreachable_mongodb_fails_clearly():
    r = _run(["serve", "--host", "127.0.0.1", "--port", str(free_port()), "--store", "mongodb://localhost/x"])
    assert r.returncode != 0
    assert "MongoDB" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_serve_with_unknown_store_url_fails_clearly():
    r = _run(["serve", "--port", str(free_port()), "--store", "postgres://localhost/x"])
    assert r.returncode != 0
    assert "postgres://localhost/x" in r.stderr and "Traceback" not in r.stderr


def test_bad_integer_setting_fails_clearly():
    r = _run(["config"], {"MEDPORT_WORKERS": "many"})
    assert r.returncode != 0 and "MEDPORT_WORKERS" in r.stderr and "Traceback" not in r.stderr


def test_config_prints_medport_variables():
    r = _run(["config"], {"MEDPORT_WORKERS": "7", "MEDPORT_MAX_BODY_BYTES": "12345"})
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    for name in ("MEDPORT_HOST", "MEDPORT_PORT", "MEDPORT_STORE", "MEDPORT_WORKERS", "MEDPORT_THREADS",
                 "MEDPORT_MAX_BODY_BYTES", "MEDPORT_MAX_BINARY_BYTES", "MEDPORT_MAX_JSON_DEPTH", "MEDPORT_BASE_URL"):
        assert name in lines, f"{name} missing from `medport config`:\n{r.stdout}"
    assert all(k.startswith("MEDPORT_") for k in lines)
    assert lines["MEDPORT_WORKERS"].split()[1] == "7"
    assert lines["MEDPORT_MAX_BODY_BYTES"].split()[1] == "12345"


def test_auth_off_is_refused_beyond_loopback(tmp_path):
    store = f"sqlite:///{tmp_path}/m.db"
    for args, env in ((["--auth", "off", "--host", "0.0.0.0"], None), (["--host", "192.0.2.1"], {"MEDPORT_AUTH": "off"})):
        r = _run(["serve", "--port", str(free_port()), "--store", store, *args], env)
        assert r.returncode == 2 and "loopback" in r.stderr and "Traceback" not in r.stderr


def test_on_off_settings_refuse_other_values(tmp_path):
    store = f"sqlite:///{tmp_path}/m.db"
    for name in ("MEDPORT_AUTH", "MEDPORT_REUSE_PORT"):
        r = _run(["serve", "--port", str(free_port()), "--store", store], {name: "maybe"})
        assert r.returncode == 2 and f"{name} must be on or off" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(f"{tmp_path}/m.db")      # refused before the store is touched


def test_auth_off_warns_loudly(server_factory, tmp_path):
    srv = server_factory(tmp_path / "s.db", auth="off")
    assert "AUTHORIZATION IS OFF" in srv.log()


def test_plain_serve_requires_tokens_and_seeds_nothing(server_factory, tmp_path):
    import requests
    srv = server_factory(tmp_path / "s.db", auth="on")
    r = requests.get(srv.base + "/Patient", timeout=30)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(srv.base + "/metadata", timeout=30).status_code == 200
    assert not (tmp_path / "demo-credentials.json").exists()
    users = _run(["user", "list", "--store", srv.store_url])
    assert users.returncode == 0 and len(users.stdout.strip().splitlines()) <= 1     # a header at most
