"""History under a confined grant counts and links only what the caller may see (security issue 12,
finding 13): versions hidden from a patient token (its content was another patient's, or a deletion)
are never counted in Bundle.total, and no page ends with a next link to an empty page."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, STORES
from tests.smart_auth._tokens import auth, make_app, mint


def observation(subject: str, value: int) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "Heart rate"},
            "subject": {"reference": f"Patient/{subject}"}, "valueInteger": value}


@pytest.fixture(params=STORES)
def seeded(request, tmp_path):
    """asha's token; an Observation filed under ravi twice, then refiled to asha (versions 1-2 hidden
    from her, 3-4 hers); her own Patient; and a deleted Observation of hers."""
    app = make_app(tmp_path, request.param)
    c = app.test_client()
    system = auth(mint(app, "system/*.cruds"), **{"Content-Type": FHIR_JSON})
    for pid in ("asha", "ravi"):
        assert c.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=system).status_code == 201
    for n, subject in enumerate(("ravi", "ravi", "asha", "asha")):
        assert c.put("/fhir/Observation/moved", json={**observation(subject, n), "id": "moved"},
                     headers=system).status_code == (201 if n == 0 else 200)    # created, then updated
    gone = c.post("/fhir/Observation", json=observation("asha", 9), headers=system).json["id"]
    assert c.delete(f"/fhir/Observation/{gone}", headers=system).status_code == 204
    return c, auth(mint(app, "patient/*.rs", patient="asha"))


def pages(c, url, headers) -> list[dict]:
    out = []
    while url:
        r = c.get(url, headers=headers)
        assert r.status_code == 200, r.json
        out.append(r.json)
        url = next((link["url"].removeprefix("http://fhir.test") for link in r.json["link"]
                    if link["relation"] == "next"), None)
        assert len(out) < 40        # her versions and events, and the server's definitions (public standards)
    return out


def shown(bundles) -> list[str]:
    return [f"{e['fullUrl'].rsplit('/', 2)[-2]}/{e['fullUrl'].rsplit('/', 1)[-1]}@{e['response']['etag']}"
            for b in bundles for e in b.get("entry", ())]


@pytest.mark.parametrize("count", [1, 2, 3, 50])
def test_instance_history_counts_and_pages_only_visible_versions(seeded, count):
    c, asha = seeded
    bundles = pages(c, f"/fhir/Observation/moved/_history?_count={count}", asha)
    assert shown(bundles) == ['Observation/moved@W/"4"', 'Observation/moved@W/"3"']
    assert all(b.get("entry") for b in bundles), "a next link led to an empty page"
    assert all(b["total"] == 2 for b in bundles)


@pytest.mark.parametrize("url", ["/fhir/Observation/_history", "/fhir/_history"])
@pytest.mark.parametrize("count", [1, 2, 50])
def test_type_and_system_history_count_only_visible_versions(seeded, url, count):
    c, asha = seeded
    bundles = pages(c, f"{url}?_count={count}", asha)
    seen = shown(bundles)
    assert 'Observation/moved@W/"4"' in seen and 'Observation/moved@W/"3"' in seen
    assert not any(s.startswith("Observation/moved@") and s[-2] in "12" for s in seen)
    assert all(b.get("entry") for b in bundles), "a next link led to an empty page"
    if url == "/fhir/_history":
        # every request of asha's token leaves one AuditEvent in her compartment (her patient context), hers to
        # see: the pages read from the first page's position, each later page's total counts the events of the
        # pages before it as well
        assert [b["total"] for b in bundles] == [len(seen) + k for k in range(len(bundles))]
        # nothing of ravi's (his Patient, the versions filed under him, the AuditEvents about them) appears
        assert all("ravi" not in str(e) for b in bundles for e in b["entry"])
    else:
        assert all(b["total"] == len(seen) for b in bundles)


def test_count_zero_gives_the_visible_total(seeded):
    c, asha = seeded
    r = c.get("/fhir/Observation/moved/_history?_count=0", headers=asha)
    assert r.status_code == 200 and r.json["total"] == 2 and "entry" not in r.json
