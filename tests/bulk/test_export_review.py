"""Bulk Data 3.0 export checks found by a conformance-and-attack review (export.html), on both stores:
file names that are not plain numbers, _typeFilter's comma-separated queries, the `deleted` listing
limited to the kick-off's criteria, `patient` values the export cannot honour."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.bulk.test_export import Exchange, obs
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


def test_typefilter_takes_comma_separated_queries_ored(ex):
    """export.html#_typefilter-query-parameter: the value is a comma-separated list of queries (the
    spec's own example joins `MedicationRequest?status=active` and `...?status=completed&date=gt...`)."""
    amended = ex.create({**obs(ex.patients[0], "amended one"), "status": "amended"})
    joined = "Observation%3Fstatus%3Damended,Observation%3Fcode:text%3Dobs%201"
    manifest = ex.export(f"/fhir/$export?_type=Observation&_typeFilter={joined}")
    assert sorted(ex.ids(manifest, "Observation")) == sorted([amended, ex.obs[1]])
    # a comma that starts no new [type]? query is a value list of the query before it
    listed = ex.export("/fhir/$export?_type=Observation&_typeFilter=Observation%3Fstatus%3Damended,preliminary")
    assert ex.ids(listed, "Observation") == [amended]
    # the same queries as repeated parameters, and in a POST Parameters body
    repeated = ex.export("/fhir/$export?_type=Observation&_typeFilter=Observation%3Fstatus%3Damended"
                         "&_typeFilter=Observation%3Fcode:text%3Dobs%201")
    assert sorted(ex.ids(repeated, "Observation")) == sorted([amended, ex.obs[1]])
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Observation"},
        {"name": "_typeFilter", "valueString": "Observation?status=amended,Observation?code:text=obs 1"}]}
    posted = ex.export("/fhir/$export", method="POST", body=body)
    assert sorted(ex.ids(posted, "Observation")) == sorted([amended, ex.obs[1]])
