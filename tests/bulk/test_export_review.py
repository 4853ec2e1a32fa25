"""Bulk Data 3.0 export checks found by a conformance-and-attack review (export.html), on both stores:
file names that are not plain numbers, _typeFilter's comma-separated queries, the `deleted` listing
limited to the kick-off's criteria, `patient` values the export cannot honour."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from tests.bulk.test_export import Exchange, obs
from tests.conftest import STORES
from tests.smart_auth._tokens import BASE, auth, mint


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


def _since_now(ex, url) -> str:
    time.sleep(0.01)
    since = ex.export(url)["transactionTime"]
    time.sleep(0.01)
    return since


def _deleted(ex, manifest) -> list[str]:
    return [e["request"]["url"] for b in ex.lines(manifest, listing="deleted") for e in b["entry"]]


def test_deleted_lists_only_what_the_kickoff_selects(ex):
    """export.html#response---complete-status: `deleted` names the resources that "match the kick-off
    request criteria" and were deleted: a Group export does not name a non-member's deleted record, a
    _typeFilter query the ones it does not match; a system export names every one."""
    group = ex.create({"resourceType": "Group", "type": "person", "actual": True,
                       "member": [{"entity": {"reference": f"Patient/{ex.patients[0]}"}}]})
    since = _since_now(ex, "/fhir/$export?_type=Patient")
    for o in ex.obs:
        assert ex.client.delete(f"/fhir/Observation/{o}", headers=auth(ex.token)).status_code in (200, 204)
    member = ex.export(f"/fhir/Group/{group}/$export?_type=Observation&_since={since}")
    assert _deleted(ex, member) == [f"Observation/{ex.obs[0]}"]
    chosen = ex.export(f"/fhir/$export?_type=Observation&_since={since}&_typeFilter=Observation%3Fcode:text%3Dobs%202")
    assert _deleted(ex, chosen) == [f"Observation/{ex.obs[2]}"]
    named = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Observation"}, {"name": "_since", "valueInstant": since},
        {"name": "patient", "valueReference": {"reference": f"Patient/{ex.patients[1]}"}}]}
    assert _deleted(ex, ex.export("/fhir/Patient/$export", method="POST", body=named)) == [f"Observation/{ex.obs[1]}"]
    everything = ex.export(f"/fhir/$export?_type=Observation&_since={since}")
    assert sorted(_deleted(ex, everything)) == sorted(f"Observation/{o}" for o in ex.obs)


def test_a_resource_written_again_is_in_output_not_deleted(ex):
    since = _since_now(ex, "/fhir/$export?_type=Patient")
    gone = ex.patients[0]
    assert ex.client.delete(f"/fhir/Patient/{gone}", headers=auth(ex.token)).status_code in (200, 204)
    back = ex.client.put(f"/fhir/Patient/{gone}", json={"resourceType": "Patient", "id": gone},
                         headers={**auth(ex.token), "Content-Type": "application/fhir+json"})
    assert back.status_code in (200, 201), back.get_data(as_text=True)
    manifest = ex.export(f"/fhir/$export?_type=Patient&_since={since}")
    assert ex.ids(manifest, "Patient") == [gone] and _deleted(ex, manifest) == []


LENIENT = {"Prefer": "respond-async, handling=lenient"}


def _patients(*ids, base="") -> dict:
    return {"resourceType": "Parameters",
            "parameter": [{"name": "patient", "valueReference": {"reference": f"{base}Patient/{i}"}} for i in ids]}


def test_patient_values_that_are_not_group_members_are_an_error(ex):
    """export.html#query-parameters, `patient`: a patient who is not a member of the Group "SHOULD return
    details via a FHIR OperationOutcome resource in an error response". At Patient level a patient the
    client may not see, or that does not exist, exports nothing (the same answer for both)."""
    group = ex.create({"resourceType": "Group", "type": "person", "actual": True,
                       "member": [{"entity": {"reference": f"Patient/{ex.patients[0]}"}}]})
    url, body = f"/fhir/Group/{group}/$export", _patients(ex.patients[0], ex.patients[1])
    r = ex.kickoff(url, method="POST", body=body)
    assert r.status_code == 400 and r.get_json()["resourceType"] == "OperationOutcome", r.get_data(as_text=True)
    # lenient: the members are exported, the other one is left out
    r = ex.kickoff(url, method="POST", body=body, **LENIENT)
    assert r.status_code == 202, r.get_data(as_text=True)
    ex.work()
    assert ex.ids(ex.get(r.headers["Content-Location"]).get_json(), "Patient") == [ex.patients[0]]
    manifest = ex.export("/fhir/Patient/$export?_type=Patient", method="POST",
                         body=_patients(ex.patients[0], "no-such-patient"))
    assert ex.ids(manifest, "Patient") == [ex.patients[0]]
    # this server's absolute URL of a Patient names it too
    manifest = ex.export("/fhir/Patient/$export?_type=Patient", method="POST",
                         body=_patients(ex.patients[2], base=f"{BASE}/"))
    assert ex.ids(manifest, "Patient") == [ex.patients[2]]


def test_unsupported_parameters_are_left_out_only_when_the_client_asks(ex):
    """export.html#query-parameters: an unsupported parameter is an error, unless Prefer: handling=lenient
    ("the server MAY process the request instead of returning an error"); a malformed value is an error
    either way."""
    url = "/fhir/$export?_type=Patient&organizeOutputBy=Patient&includeAssociatedData=LatestProvenanceResources&x=1"
    for prefer in ("respond-async", "respond-async, handling=strict"):
        assert ex.kickoff(url, Prefer=prefer).status_code == 400
    r = ex.kickoff(url, **LENIENT)
    assert r.status_code == 202, r.get_data(as_text=True)
    warning = [i for i in r.get_json()["issue"] if i["severity"] == "warning"]
    assert warning and all(n in warning[0]["diagnostics"] for n in ("organizeOutputBy", "includeAssociatedData", "x"))
    ex.work()
    manifest = ex.get(r.headers["Content-Location"]).get_json()
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    assert ex.kickoff("/fhir/$export?_since=yesterday", **LENIENT).status_code == 400


def test_since_with_an_offset_whose_plus_was_not_encoded(ex):
    """A FHIR instant's '+hh:mm' sent unencoded in a query string arrives as ' hh:mm' (form decoding):
    read as the '+' it was, like _outputFormat's 'application/fhir+ndjson'."""
    for raw in ("2020-01-01T05:30:00+05:30", "2020-01-01T05:30:00%2B05:30"):
        manifest = ex.export(f"/fhir/$export?_type=Patient&_since={raw}&_until=2999-01-01T00:00:00+00:00")
        assert sorted(ex.ids(manifest, "Patient")) == sorted(ex.patients)
    assert ex.kickoff("/fhir/$export?_since=2020-01-01T00:00:00 05:30 x").status_code == 400


def test_the_manifest_request_is_the_kickoff_url_under_the_server_base(ex):
    """export.html#response---complete-status, `request`: the full URL of the kick-off, as the client
    knows the server (its configured base URL, which the status and file URLs use too)."""
    manifest = ex.export("/fhir/Patient/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale")
    assert manifest["request"] == f"{BASE}/Patient/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale"
    assert ex.export("/fhir/$export")["request"] == f"{BASE}/$export"


def test_lenient_leaves_out_types_the_level_does_not_cover_never_those_outside_the_scopes(ex):
    """export.html#query-parameters, `_type`: types outside the Patient compartment at Patient level are
    an error, or left out under handling=lenient; a type the token's scopes do not grant stays a 403."""
    url = "/fhir/Patient/$export?_type=Patient,Organization&_typeFilter=Organization%3Fname%3Dx"
    assert ex.kickoff(url).status_code == 400
    r = ex.kickoff(url, **LENIENT)
    assert r.status_code == 202, r.get_data(as_text=True)
    assert "_type=Organization" in r.get_json()["issue"][1]["diagnostics"]
    ex.work()
    assert [o["type"] for o in ex.get(r.headers["Content-Location"]).get_json()["output"]] == ["Patient"]
    assert ex.kickoff("/fhir/Patient/$export?_type=Organization", **LENIENT).status_code == 400
    narrow = mint(ex.app, "system/Patient.rs", client_id="narrow")
    assert ex.kickoff("/fhir/Patient/$export?_type=Patient,Observation", narrow, **LENIENT).status_code == 403


def test_a_resource_changed_while_the_export_runs_is_exported_as_it_was_at_transaction_time(ex):
    """export.html#response---complete-status, transactionTime: the export "SHALL include any matching
    resources modified up to and including this instant" and "SHOULD NOT include any resources modified
    after": a resource changed after the kick-off, before the worker reads it, comes as it was then."""
    r = ex.kickoff("/fhir/$export?_type=Observation")
    changed = ex.obs[0]
    for text in ("changed once", "changed twice"):
        new = {**obs(ex.patients[0], text), "id": changed}
        assert ex.client.put(f"/fhir/Observation/{changed}", json=new, headers={
            **auth(ex.token), "Content-Type": "application/fhir+json"}).status_code == 200
    assert ex.client.delete(f"/fhir/Observation/{ex.obs[1]}", headers=auth(ex.token)).status_code in (200, 204)
    ex.work()
    manifest = ex.get(r.headers["Content-Location"]).get_json()
    rows = {o["id"]: o for o in ex.lines(manifest, "Observation")}
    assert sorted(rows) == sorted(ex.obs[:1] + ex.obs[2:])      # the deleted one is gone from the search
    assert rows[changed]["code"]["text"] == "obs 0" and rows[changed]["meta"]["versionId"] == "1"
    later = ex.export(f"/fhir/$export?_type=Observation&_since={manifest['transactionTime']}")
    assert [o["code"]["text"] for o in ex.lines(later, "Observation")] == ["changed twice"]


def test_group_members_are_read_as_references_are_everywhere(ex):
    """Group.member.entity as the server reads any reference (search's Group?member=): a versioned
    reference or this server's absolute URL names a local Patient; another server's Patient is none of
    ours, whatever its id."""
    group = ex.create({"resourceType": "Group", "type": "person", "actual": True, "member": [
        {"entity": {"reference": f"Patient/{ex.patients[0]}/_history/1"}},
        {"entity": {"reference": f"http://other.example/fhir/Patient/{ex.patients[1]}"}},
        {"entity": {"reference": f"{BASE}/Patient/{ex.patients[2]}"}}]})
    manifest = ex.export(f"/fhir/Group/{group}/$export?_type=Patient")
    assert sorted(ex.ids(manifest, "Patient")) == sorted([ex.patients[0], ex.patients[2]])


def test_elements_keep_the_mandatory_elements(ex):
    """export.html#query-parameters, `_elements`: "A server SHOULD always return mandatory elements whether
    they are requested or not" and mark the resources SUBSETTED; a type the list does not name is whole."""
    manifest = ex.export("/fhir/$export?_type=Observation,Organization&_elements=Observation.subject")
    rows = ex.lines(manifest, "Observation")
    assert rows and all(set(r) == {"resourceType", "id", "meta", "subject", "status", "code"} for r in rows)
    assert all(any(t["code"] == "SUBSETTED" for t in r["meta"]["tag"]) for r in rows)
    org = ex.lines(manifest, "Organization")[0]
    assert org["name"] == "General" and all(t["code"] != "SUBSETTED" for t in org["meta"].get("tag", ()))
