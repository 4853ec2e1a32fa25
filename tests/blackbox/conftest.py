"""Fixtures that run `medport serve` as a real subprocess (see _server.py).

- `server`: one server for the whole session (2 workers x 4 threads, fresh store).
- `server_factory`: start servers inside one test (on a given store, with extra
  MEDPORT_* variables); every server it started is stopped at teardown.
"""
from __future__ import annotations

import pytest

from ._server import MedportServer


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("medport-session")
    srv = MedportServer(str(d / "store.db"), str(d), workers=2, threads=4).start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def base(server) -> str:
    return server.base


def _factory(log_dir):
    started: list[MedportServer] = []

    def start(store_path, *, env=None, workers=2, threads=4, **kw) -> MedportServer:
        srv = MedportServer(str(store_path), str(log_dir), workers=workers, threads=threads, env=env, **kw)
        started.append(srv)
        return srv.start()

    return start, started


@pytest.fixture
def server_factory(tmp_path):
    start, started = _factory(tmp_path)
    yield start
    for srv in started:
        srv.cleanup()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    start, started = _factory(tmp_path_factory.mktemp("medport-module"))
    yield start
    for srv in started:
        srv.cleanup()
