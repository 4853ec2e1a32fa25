"""Bulk Data 3.0 export checks found by a conformance-and-attack review (export.html), on both stores:
file names that are not plain numbers, _typeFilter's comma-separated queries, the `deleted` listing
limited to the kick-off's criteria, `patient` values the export cannot honour."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.bulk.test_export import Exchange
from tests.conftest import STORES


@pytest.fixture(params=STORES)
def ex(request, tmp_path):
    return Exchange(tmp_path, request.param)


def test_a_file_name_that_is_no_plain_number_is_404(ex):
    manifest = ex.export("/fhir/$export?_type=Patient")
    url = manifest["output"][0]["url"].rpartition("/")[0]
    for name in ("².ndjson", "\u0663.ndjson", "9" * 5000 + ".ndjson", "deleted-².ndjson", "-1.ndjson", "0x0.ndjson"):
        r = ex.get(f"{url}/{quote(name)}")
        assert r.status_code == 404, (name[:20], r.get_data(as_text=True))
        assert r.get_json()["resourceType"] == "OperationOutcome"
