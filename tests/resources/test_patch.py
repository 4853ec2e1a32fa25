"""patch with JSON Patch (http.html#patch, RFC 6902): applied before the write lock, bounded."""
from __future__ import annotations

import base64
import contextlib
import json
import tracemalloc

from fhirserver.interactions import patch as patch_mod
from fhirserver.interactions import update as update_i
from tests.conftest import patient, post

PATCH = "application/json-patch+json"


def do_patch(client, pid, ops, **headers):
    return client.patch(f"/fhir/Patient/{pid}", data=json.dumps(ops), headers={"Content-Type": PATCH, **headers})


def test_patch_applies_and_versions(client):
    pid = post(client, patient()).json["id"]
    r = do_patch(client, pid, [{"op": "replace", "path": "/birthDate", "value": "1951-01-01"},
                               {"op": "add", "path": "/active", "value": True}])
    assert r.status_code == 200 and r.json["birthDate"] == "1951-01-01" and r.json["meta"]["versionId"] == "2"
    hist = client.get(f"/fhir/Patient/{pid}/_history").json
    assert hist["entry"][0]["request"]["method"] == "PUT"


def test_patch_errors(client):
    pid = post(client, patient()).json["id"]
    assert do_patch(client, pid, {"op": "add"}).status_code == 400                          # not an array
    assert do_patch(client, pid, [{"op": "jump", "path": "/a"}]).status_code == 400         # unknown op
    assert do_patch(client, pid, [{"op": "remove", "path": "/nope"}]).status_code == 422    # cannot apply
    r = do_patch(client, pid, [{"op": "add", "path": "/gender", "value": "robot"}])        # invalid result
    assert r.status_code == 422 and r.json["issue"]
    assert do_patch(client, pid, [{"op": "replace", "path": "/id", "value": "x"}]).status_code == 422
    assert do_patch(client, pid, [{"op": "test", "path": "/birthDate", "value": "2000-01-01"}]).status_code == 422
    assert do_patch(client, pid, [], **{"If-Match": 'W/"9"'}).status_code == 412
    r = client.patch(f"/fhir/Patient/{pid}", json=[], headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 400             # FHIR JSON is a FHIRPath Patch: a Parameters resource
    r = client.patch(f"/fhir/Patient/{pid}", data="[]", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert client.get(f"/fhir/Patient/{pid}").json["meta"]["versionId"] == "1"
    assert do_patch(client, "missing", []).status_code == 404


# Bounded patches, applied before the write lock (issue 12, finding 4)


def doubling(n: int, path: str = "/name") -> list[dict]:
    """Each copy appends the whole array to itself: 2**n elements from n operations (RFC 6902 copy)."""
    return [{"op": "copy", "from": path, "path": f"{path}/-"} for _ in range(n)]


def test_a_doubling_copy_patch_is_refused_with_bounded_work(client):
    """The brief's 1 KB request: add /x ["a"], then 22 x copy /x -> /x/-; it used to double the
    document 22 times under the write lock (4 million elements, hundreds of MB)."""
    pid = post(client, patient()).json["id"]
    ops = [{"op": "add", "path": "/x", "value": ["a"]}] + doubling(22, "/x")
    assert len(json.dumps(ops)) < 1100
    baseline, peak = peak_memory(lambda: do_patch(client, pid, [])), peak_memory(lambda: do_patch(client, pid, ops))
    r = do_patch(client, pid, ops)
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "too-costly"
    assert "copies more than" in r.json["issue"][0]["diagnostics"]
    assert peak < baseline + (4 << 20)        # a request's own cost, not 2**22 elements
    assert client.get(f"/fhir/Patient/{pid}").json["meta"]["versionId"] == "2"      # the empty patch


def peak_memory(request) -> int:
    tracemalloc.start()
    try:
        request()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_copies_are_bounded_even_when_every_step_is_a_valid_resource(client):
    """What a patch adds comes from its request, except copies: together they may copy at most 64 KiB."""
    pid = post(client, patient()).json["id"]
    long_name = {"op": "add", "path": "/name/-", "value": {"text": "x" * 8000}}
    r = do_patch(client, pid, [long_name] + [{"op": "copy", "from": "/name/1", "path": "/name/-"}] * 7)
    assert r.status_code == 200 and len(r.json["name"]) == 9
    r = do_patch(client, pid, [{"op": "copy", "from": "/name/1", "path": "/name/-"}] * 9)     # 72 KB of copies
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "too-costly", r.json
    assert client.get(f"/fhir/Patient/{pid}").json["meta"]["versionId"] == "2"


def test_too_many_operations_and_too_deep_a_result_are_refused(client):
    pid = post(client, patient()).json["id"]
    many = [{"op": "test", "path": "/birthDate", "value": "1950-04-02"}] * (patch_mod.MAX_OPERATIONS + 1)
    r = do_patch(client, pid, many)
    assert r.status_code == 413 and str(patch_mod.MAX_OPERATIONS) in r.json["issue"][0]["diagnostics"]
    assert do_patch(client, pid, many[:patch_mod.MAX_OPERATIONS]).status_code == 200
    # copying an extension into its own deepest point doubles the nesting with each operation
    ops = [{"op": "add", "path": "/extension", "value": [{"url": "http://x.test/e", "extension": []}]}]
    for k in range(12):
        ops.append({"op": "copy", "from": "/extension/0",
                    "path": "/extension/0" + "/extension/0" * (2 ** k - 1) + "/extension/-"})
    r = do_patch(client, pid, ops)
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "too-costly"
    assert "deeper than" in r.json["issue"][0]["diagnostics"]


@contextlib.contextmanager
def watching_the_lock(ctx, monkeypatch):
    """Records, for every application of a patch, whether a write transaction was open."""
    state = {"inside": False, "applied_inside": []}
    original_tx, original_apply = ctx.store.transaction, patch_mod.apply_bounded

    @contextlib.contextmanager
    def transaction(*a, **kw):
        with original_tx(*a, **kw) as tx:
            state["inside"] = True
            try:
                yield tx
            finally:
                state["inside"] = False

    def apply_bounded(*a, **kw):
        state["applied_inside"].append(state["inside"])
        return original_apply(*a, **kw)

    monkeypatch.setattr(ctx.store, "transaction", transaction)
    monkeypatch.setattr(patch_mod, "apply_bounded", apply_bounded)
    yield state


def transaction_patch(pid: str, ops: list[dict], method_url: str | None = None) -> dict:
    data = base64.b64encode(json.dumps(ops).encode()).decode()
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
         "request": {"method": "PATCH", "url": method_url or f"Patient/{pid}"}}]}


def test_patches_are_applied_before_the_write_lock(client, ctx, monkeypatch):
    pid = post(client, patient()).json["id"]
    op = [{"op": "replace", "path": "/birthDate", "value": "1951-01-01"}]
    with watching_the_lock(ctx, monkeypatch) as state:
        assert do_patch(client, pid, op).status_code == 200
        r = client.post("/fhir", json=transaction_patch(pid, [{"op": "add", "path": "/active", "value": True}]),
                        headers={"Content-Type": "application/fhir+json"})
        assert r.status_code == 200, r.json
        batch = {**transaction_patch(pid, [{"op": "add", "path": "/gender", "value": "female"}]), "type": "batch"}
        assert client.post("/fhir", json=batch, headers={"Content-Type": "application/fhir+json"}).status_code == 200
    assert state["applied_inside"] == [False, False, False]
    stored = client.get(f"/fhir/Patient/{pid}").json
    assert (stored["birthDate"], stored["active"], stored["gender"]) == ("1951-01-01", True, "female")
    # a transaction's PATCH entry is bounded like any patch
    r = client.post("/fhir", json=transaction_patch(pid, [{"op": "add", "path": "/x", "value": ["a"]}] + doubling(22, "/x")),
                    headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "too-costly"


def competing(ctx, pid: str, times: int):
    """A prepare_patch that lets another writer change the Patient right after the patch was applied."""
    calls = []
    original = patch_mod.prepare_patch

    def prepare_patch(c, current, operations):
        patched = original(c, current, operations)
        calls.append(current.version)
        if len(calls) <= times:
            body = json.loads(ctx.store.read("Patient", pid).body)
            update_i.update(ctx, "Patient", pid, {**body, "gender": "female", "active": len(calls) % 2 == 0})
        return patched
    return prepare_patch, calls


def test_a_write_between_applying_and_the_lock_is_not_lost(client, ctx, monkeypatch):
    pid = post(client, patient()).json["id"]
    prepare_patch, calls = competing(ctx, pid, 1)
    monkeypatch.setattr(patch_mod, "prepare_patch", prepare_patch)
    r = do_patch(client, pid, [{"op": "replace", "path": "/birthDate", "value": "1951-01-01"}])
    assert r.status_code == 200 and calls == [1, 2]          # applied again to the newer version
    assert r.json["meta"]["versionId"] == "3" and r.json["gender"] == "female" and r.json["birthDate"] == "1951-01-01"
    # with If-Match, the newer version is a 412 at once
    prepare_patch, calls = competing(ctx, pid, 1)
    monkeypatch.setattr(patch_mod, "prepare_patch", prepare_patch)
    r = do_patch(client, pid, [{"op": "add", "path": "/active", "value": True}], **{"If-Match": 'W/"3"'})
    assert r.status_code == 412 and calls == [3]
    # a resource that keeps changing: a few attempts, then 409
    prepare_patch, calls = competing(ctx, pid, 99)
    monkeypatch.setattr(patch_mod, "prepare_patch", prepare_patch)
    r = do_patch(client, pid, [{"op": "replace", "path": "/birthDate", "value": "1952-01-01"}])
    assert r.status_code == 409 and len(calls) == patch_mod.ATTEMPTS
    assert client.get(f"/fhir/Patient/{pid}").json["birthDate"] == "1951-01-01"


def test_a_transaction_patch_meets_a_newer_version_under_the_lock(client, ctx, monkeypatch):
    pid = post(client, patient()).json["id"]
    prepare_patch, calls = competing(ctx, pid, 1)
    monkeypatch.setattr(patch_mod, "prepare_patch", prepare_patch)
    r = client.post("/fhir", json=transaction_patch(pid, [{"op": "replace", "path": "/birthDate", "value": "1951-01-01"}]),
                    headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.json
    assert calls == [1, 2]             # before the lock on version 1, again under it on version 2
    stored = client.get(f"/fhir/Patient/{pid}").json
    assert stored["meta"]["versionId"] == "3" and stored["gender"] == "female" and stored["birthDate"] == "1951-01-01"
