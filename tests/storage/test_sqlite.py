"""What only the SQLite store does: a file that survives reopening, uploads staged in its folder."""
from __future__ import annotations

import pathlib

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
