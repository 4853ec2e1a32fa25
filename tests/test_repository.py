"""The request-scoped repository (fhirserver/repository.py): the one way interactions and operations
reach resources, with the request's Access applied on every call; on both stores.

test_no_raw_store_access is the guard rail: a module under interactions/ or operations/ (and the
health card issuer and the patient matcher) that reads, searches or writes resources through the raw
store fails it, so a new access rule written in Access reaches every path."""
from __future__ import annotations

import ast
import pathlib

import pytest

from fhirserver.errors import Forbidden, NotFound
from fhirserver.interactions.common import new_id, prepare, store_new_version
from fhirserver.interactions.conditional import parse_criteria
from fhirserver.repository import Repository
from fhirserver.search.parse import parse_search
from fhirserver.smart_auth.access import UNRESTRICTED, Access
from fhirserver.smart_auth.scopes import Grants

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fhirserver"
GUARDED = sorted([*ROOT.glob("interactions/*.py"), *ROOT.glob("operations/*.py"), *ROOT.glob("immunization/*.py"),
                  ROOT / "health_cards" / "issuance.py", ROOT / "uhid" / "matching.py"])

# `.store` may appear in those modules only as
# - `.store.blobs`: Binary.data lives in the blob store, not in the resource store (binary_content.py);
# - `.store.get_record`: server records (an account holder), not resources;
# - an argument of these helpers, which keep server records (accounts, issuer keys, revocations, claim
#   codes, invitations, a Subscription's event records read after the Subscription itself was read
#   with the caller's rights) or are the delegation policy's own unguarded look, as Access itself reads
#   delegations on every proxy request (governance/proxy.py).
# - `.store.quality_counts`: the data quality counters (quality/), figures, never a resource;
# - `.store.last_write`: whether a type was ever written, a change counter (a search over all types
#   skips the types never written; each searched type still goes through ctx.repo.search);
# - an argument of `definitions`: the write path tells this process's definition cache that one was written
#   (conformance/definitions.py; definitions are written by administrators and the CLI alone).
STORE_MEMBERS = {"blobs", "get_record", "quality_counts", "last_write"}
STORE_HELPERS = {"Users", "IssuerKeys", "revocation.rid", "revocation.revoke", "claim_codes.issue",
                 "family_invite.issue", "proxy.live_related_person", "proxy.live_delegation",
                 "state.events", "state.events_since", "definitions"}
WRITE_PATH = ROOT / "interactions" / "common.py"     # store_new_version / store_delete unwrap tx.raw
# the access idioms live in the repository; these modules only call it
# (write admission stays in the single write path, interactions/common.py: store_new_version, store_delete)
IDIOMS = {"check_visible", "visible", "guard", "versions", "confined", "search_visible"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    name = path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path.name
    for node in sorted(ast.walk(tree), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0))):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr == "store":
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.attr in STORE_MEMBERS:
                continue
            if isinstance(parent, ast.Call) and node in parent.args and _dotted(parent.func) in STORE_HELPERS:
                continue
            found.append(f"{where}: {_dotted(node)} (use ctx.repo)")
        elif isinstance(node, ast.Attribute) and node.attr in IDIOMS and _dotted(node.value).endswith("access"):
            found.append(f"{where}: {_dotted(node)} (the repository applies the access)")
        elif isinstance(node, ast.Attribute) and node.attr == "raw" and path != WRITE_PATH:
            found.append(f"{where}: {_dotted(node)} (the raw transaction is for the write path alone)")
        elif isinstance(node, ast.Attribute) and node.attr == "search_visible":
            found.append(f"{where}: {_dotted(node)} (use ctx.repo.search)")
        elif isinstance(node, ast.Attribute) and node.attr == "unit" and _dotted(node.value) in ("prov", "provenance"):
            found.append(f"{where}: {_dotted(node)} (use ctx.repo.transaction)")
    return found


def test_no_raw_store_access():
    assert len(GUARDED) > 20
    found = [v for path in GUARDED for v in _violations(path)]
    assert not found, "resources reached around the request's repository:\n" + "\n".join(found)


def test_the_check_finds_raw_store_access(tmp_path):
    """The guard rail itself: each way around the repository is caught."""
    bad = tmp_path / "probe.py"
    bad.write_text("def f(ctx, access):\n    ctx.store.read('Patient', '1')\n    store = ctx.store\n"
                   "    access.guard('read')\n    ctx.search_visible\n    ctx.store.blobs.put\n"
                   "    Users(ctx.store)\n    helper(ctx.store)\n    tx.raw.read('Patient', '1')\n")
    found = _violations(bad)
    assert [v.split(": ", 1)[1].split(" ")[0] for v in found] == \
        ["ctx.store", "ctx.store", "access.guard", "ctx.search_visible", "ctx.store", "tx.raw"]


# -- the repository on both stores ----------------------------------------------------------------

def _put(ctx, resource: dict, id: str | None = None):
    with ctx.store.transaction() as tx:
        return store_new_version(tx, prepare(ctx, resource["resourceType"], resource), id or new_id(), "PUT",
                                 tx.read(resource["resourceType"], id) if id else None)


def _obs(patient: str, mark: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": mark},
            "subject": {"reference": f"Patient/{patient}"}}


@pytest.fixture
def world(ctx):
    asha = _put(ctx, {"resourceType": "Patient", "name": [{"family": "Sharma"}]}).id
    ravi = _put(ctx, {"resourceType": "Patient", "name": [{"family": "Kumar"}]}).id
    return {"asha": asha, "ravi": ravi, "asha.obs": _put(ctx, _obs(asha, "asha-lab")).id,
            "ravi.obs": _put(ctx, _obs(ravi, "ravi-lab")).id}


def _patient_repo(ctx, patient: str, scope: str = "patient/*.cruds") -> Repository:
    return ctx.acting_as(Access(Grants.parse(scope), patient)).repo


def test_read_answers_404_outside_the_grant(ctx, world):
    repo = _patient_repo(ctx, world["asha"])
    assert repo.read("Patient", world["asha"]).id == world["asha"]
    assert repo.read("Observation", world["asha.obs"]).id == world["asha.obs"]
    for rtype, id in (("Patient", world["ravi"]), ("Observation", world["ravi.obs"]), ("Patient", "absent")):
        with pytest.raises(NotFound):
            repo.read(rtype, id)
    assert ctx.repo.read("Patient", world["ravi"]).id == world["ravi"]       # unrestricted: everything
    assert ctx.repo.read("Patient", "absent") is None
    with pytest.raises(Forbidden):
        _patient_repo(ctx, world["asha"], "patient/Patient.r").read("Observation", world["asha.obs"])


def test_vread_hides_versions_from_before_a_move(ctx, world):
    """An Observation refiled from ravi to asha: asha sees the version about her, not the one before."""
    moved = _put(ctx, _obs(world["asha"], "refiled"), world["ravi.obs"])
    repo = _patient_repo(ctx, world["asha"])
    assert repo.vread("Observation", moved.id, 2).version == 2
    assert repo.vread("Observation", moved.id, 1) is None
    assert ctx.repo.vread("Observation", moved.id, 1).version == 1
    history = repo.history("Observation", moved.id, limit=10, max_total=100)
    assert [v.version for v in history.items] == [2] and history.total == 1
    assert [v.version for v in ctx.repo.history("Observation", moved.id, limit=10, max_total=100).items] == [2, 1]
    with pytest.raises(NotFound):
        _patient_repo(ctx, world["ravi"]).history("Observation", moved.id, limit=10, max_total=100)


def test_search_is_guarded_and_needs_the_grant(ctx, world):
    everything = parse_search("Observation", []).query
    repo = _patient_repo(ctx, world["asha"])
    assert {v.id for v in repo.search("Observation", everything, limit=10).items} == {world["asha.obs"]}
    assert {v.id for v in ctx.repo.search("Observation", everything, limit=10).items} == \
        {world["asha.obs"], world["ravi.obs"]}
    with pytest.raises(Forbidden):
        _patient_repo(ctx, world["asha"], "patient/Patient.rs").search("Observation", everything, limit=10)
    # a conditional reference resolves among what may be searched, and never answers 403
    ravi = parse_criteria("Patient", "family=Kumar")
    assert repo.resolve("Patient", ravi) == []
    assert [v.id for v in ctx.repo.resolve("Patient", ravi)] == [world["ravi"]]
    assert _patient_repo(ctx, world["asha"], "patient/Observation.rs").resolve("Patient", ravi) == []


def test_conditional_matches_need_search_rights_and_stay_inside(ctx, world):
    kumar = parse_criteria("Patient", "family=Kumar")
    assert _patient_repo(ctx, world["asha"]).matches("Patient", kumar, 2, "update") == []
    assert [v.id for v in ctx.repo.matches("Patient", kumar, 2, "update")] == [world["ravi"]]
    with pytest.raises(Forbidden):       # a write-only grant must not probe what exists
        _patient_repo(ctx, world["asha"], "patient/Patient.u").matches("Patient", kumar, 2, "update")


def test_the_unit_of_work_reads_and_writes_with_the_access(ctx, world):
    asha = ctx.acting_as(Access(Grants.parse("patient/*.cruds"), world["asha"]))
    with asha.repo.transaction() as tx:
        with pytest.raises(NotFound):
            tx.read("Observation", world["ravi.obs"], "update")
        current = tx.read("Observation", world["asha.obs"], "update")
        assert [v.id for v in tx.matches("Observation", parse_criteria("Observation", "code:text=asha-lab"), 2,
                                         "update")] == [world["asha.obs"]]
        store_new_version(tx, prepare(asha, "Observation", {**_obs(world["asha"], "edited"), "id": current.id}),
                          current.id, "PUT", current)
    assert ctx.repo.read("Observation", world["asha.obs"]).version == 2
    with pytest.raises(Forbidden), asha.repo.transaction() as tx:     # admission: not about ravi
        store_new_version(tx, prepare(asha, "Observation", _obs(world["ravi"], "forged")), new_id(), "POST", None)
    assert ctx.repo.search("Observation", parse_criteria("Observation", "code:text=forged"), limit=5).items == []


class _Counting:
    """A store that counts the calls made through it."""

    def __init__(self, store):
        self.store, self.calls = store, []

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if callable(attr):
            def call(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)
            return call
        return attr


class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the store was used ({name}) while making a repository")


def test_the_read_path_costs_what_it_did(ctx, world):
    """Making a repository touches nothing; a read is one store read, plus one guarded lookup of the id
    when the grant is confined (as Access.check_visible always did)."""
    Repository(_Untouchable(), UNRESTRICTED, ctx.base)
    counting = _Counting(ctx.store)
    Repository(counting, UNRESTRICTED, ctx.base).read("Patient", world["asha"])
    assert counting.calls == ["read"]
    counting.calls.clear()
    Repository(counting, Access(Grants.parse("patient/*.rs"), world["asha"]), ctx.base).read("Patient", world["asha"])
    assert counting.calls == ["search", "read"]
    counting.calls.clear()
    Repository(counting, Access(Grants.parse("system/*.rs")), ctx.base).read("Patient", world["asha"])
    assert counting.calls == ["read"]
