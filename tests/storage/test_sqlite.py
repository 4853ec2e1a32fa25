"""What only the SQLite store does: a file that survives reopening, uploads staged in its folder."""
from __future__ import annotations

import pathlib
import threading

import pytest

from fhirserver.errors import PayloadTooLarge
from fhirserver.storage.sqlite import SqliteStore
from tests.storage.test_contract import write


def test_data_survives_reopen(tmp_path):
    s = SqliteStore(str(tmp_path / "d.db"))
    write(s, "a", 1)
    s.close()
    assert SqliteStore(str(tmp_path / "d.db")).read("Patient", "a").version == 1


def test_refused_uploads_leave_no_staged_file(tmp_path):
    s = SqliteStore(str(tmp_path / "d.db"))
    with pytest.raises(PayloadTooLarge):
        s.blobs.put(iter([b"x" * 8, b"y" * 8]), max_bytes=10)
    assert list(pathlib.Path(s.blobs.root, "tmp").iterdir()) == []


def test_a_relative_path_names_one_file_whatever_the_working_directory(tmp_path, monkeypatch):
    """Connections are opened per thread, when first needed: a store opened as `s.db` keeps using that
    file after the process changes its working directory, instead of opening (and creating) another."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    s = SqliteStore("s.db")
    try:
        write(s, "p", 1)
        monkeypatch.chdir(tmp_path / "b")
        got = []
        t = threading.Thread(target=lambda: got.append(s.read("Patient", "p")))     # a new connection
        t.start()
        t.join()
        assert got[0] is not None and got[0].version == 1
        assert not (tmp_path / "b" / "s.db").exists()
    finally:
        s.close()
