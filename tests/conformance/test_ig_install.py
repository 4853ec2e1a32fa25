"""`medport ig install PATH` (conformance/package.py, install.py, cli_ig.py): a package folder or .tgz is
installed in one transaction, created or updated by url and version, examples left out, refused when it
is not a package or breaks the bounds; afterwards its profiles are served and enforced."""
from __future__ import annotations

import io
import json
import os
import shutil
import tarfile

import pytest

from fhirserver import create_app
from fhirserver.cli import main
from fhirserver.conformance import definitions, install, package
from tests.conftest import FHIR_JSON, make_settings

ABDM = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "abdm", "ndhm.in-2.0.1")
ABDM_PATIENT = "https://nrces.in/ndhm/fhir/r4/StructureDefinition/Patient"
CONTENT = 5         # the ImplementationGuide, two StructureDefinitions, two ValueSets


def tgz(path, members: dict[str, bytes], links: dict[str, str] | None = None) -> str:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return str(path)


def abdm_tgz(path) -> str:
    """The ABDM subset packed as packages.fhir.org serves it: package/..., examples in package/example/."""
    members = {}
    for name in sorted(os.listdir(ABDM)):
        full = os.path.join(ABDM, name)
        if os.path.isfile(full):
            members[f"package/{name}"] = open(full, "rb").read()
    for name in sorted(os.listdir(os.path.join(ABDM, "examples"))):
        members[f"package/example/{name}"] = open(os.path.join(ABDM, "examples", name), "rb").read()
    return tgz(path, members)


def test_a_folder_installs_then_updates(ctx):
    found = package.read(ABDM)
    assert (found.name, found.version) == ("ndhm.in", "2.0.1")
    counts = install.install(ctx, found)
    assert counts["created"] == CONTENT and counts["StructureDefinition"] == 2 and counts["ValueSet"] == 2
    assert ctx.store.read("StructureDefinition", "Patient").version == 1          # the package's id
    assert definitions(ctx.store).resolve("StructureDefinition", ABDM_PATIENT)["version"] == "2.0.1"
    assert ctx.store.read("Patient", "example-01") is None                           # examples are not content
    again = install.install(ctx, package.read(ABDM))
    assert (again["created"], again["updated"]) == (0, CONTENT)
    assert ctx.store.read("StructureDefinition", "Patient").version == 2


def test_the_cli_installs_a_tgz_and_the_profile_is_served_and_enforced(tmp_path, capsys):
    settings = make_settings(tmp_path)
    app = create_app(settings)
    assert main(["ig", "install", abdm_tgz(tmp_path / "ndhm.tgz"), "--store", settings.store]) == 0
    out = capsys.readouterr().out
    assert "installed ndhm.in#2.0.1: 5 created, 0 updated" in out and "2 StructureDefinition" in out
    client = app.test_client()
    bundle = client.get(f"/fhir/StructureDefinition?url={ABDM_PATIENT}").get_json()
    assert [e["resource"]["url"] for e in bundle["entry"]] == [ABDM_PATIENT]
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0
    example = json.load(open(os.path.join(ABDM, "examples", "Patient-example-01.json")))
    headers = {"Content-Type": FHIR_JSON}
    r = client.put("/fhir/Patient/example-01", data=json.dumps(example), headers=headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    wrong = {**example, "id": "wrong", "name": [{"family": "ABC"}]}
    r = client.put("/fhir/Patient/wrong", data=json.dumps(wrong), headers=headers)
    assert r.status_code == 422 and "Patient.name[0].text" in r.get_data(as_text=True), r.get_data(as_text=True)


def test_not_a_package_is_refused_clearly(tmp_path, capsys):
    store = make_settings(tmp_path).store
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["ig", "install", str(text), "--store", store]) == 2
    assert "not a package" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["ig", "install", str(tmp_path / "empty"), "--store", store]) == 2
    assert "not a FHIR package (no package.json" in capsys.readouterr().err
    bare = tgz(tmp_path / "bare.tgz", {"package/StructureDefinition-x.json": b"{}"})
    assert main(["ig", "install", bare, "--store", store]) == 2
    assert "no package/package.json" in capsys.readouterr().err


MANIFEST = json.dumps({"name": "evil", "version": "1.0.0"}).encode()


@pytest.mark.parametrize("members,links,why", [
    ({"package/package.json": MANIFEST, "../escape.json": b"{}"}, None, "outside the package"),
    ({"package/package.json": MANIFEST, "/etc/escape.json": b"{}"}, None, "outside the package"),
    ({"package/package.json": MANIFEST}, {"package/ValueSet-x.json": "/etc/passwd"}, "link"),
])
def test_unsafe_members_are_refused(tmp_path, members, links, why):
    with pytest.raises(package.NotAPackage, match=why):
        package.read(tgz(tmp_path / "evil.tgz", members, links))


def test_bounds(tmp_path, monkeypatch):
    path = tgz(tmp_path / "big.tgz", {"package/package.json": MANIFEST, "package/a.json": b"{}" * 50,
                                      "package/b.json": b"{}"})
    monkeypatch.setattr(package, "MAX_FILE_BYTES", 64)
    with pytest.raises(package.NotAPackage, match="larger than"):
        package.read(path)
    monkeypatch.setattr(package, "MAX_FILE_BYTES", 1024)
    monkeypatch.setattr(package, "MAX_MEMBERS", 2)
    with pytest.raises(package.NotAPackage, match="more than 2 members"):
        package.read(path)


def test_a_symlink_in_a_folder_is_refused(tmp_path):
    folder = tmp_path / "pkg"
    shutil.copytree(ABDM, folder)
    os.symlink("/etc/hostname", folder / "ValueSet-link.json")
    with pytest.raises(package.NotAPackage, match="link"):
        package.read(str(folder))


def test_all_or_nothing(ctx):
    found = package.read(ABDM)
    found.resources.append({"resourceType": "ValueSet", "url": "urn:bad", "status": "active", "unknownElement": 1})
    with pytest.raises(Exception, match="unknownElement"):
        install.install(ctx, found)
    assert definitions(ctx.store).resolve("StructureDefinition", ABDM_PATIENT) is None
    assert ctx.store.read("StructureDefinition", "Patient") is None


def test_a_header_bomb_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "longname.tgz"
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("package/" + "a" * (package.MAX_HEADER_BYTES + 10) + ".json")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(package.NotAPackage, match="extended header"):
        package.read(str(path))
    path = tmp_path / "pax.tgz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("package/x.json")
        info.pax_headers = {"comment": "x" * (package.MAX_HEADER_BYTES + 10)}
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(package.NotAPackage, match="extended header"):
        package.read(str(path))


def test_the_uncompressed_stream_is_bounded_whatever_the_headers_declare(tmp_path, monkeypatch):
    members = {"package/package.json": MANIFEST, **{f"package/empty-{i}.txt": b"" for i in range(40)}}
    path = tgz(tmp_path / "many.tgz", members)          # sizes declared: a few bytes; headers: 20 kB
    monkeypatch.setattr(package, "MAX_TOTAL_BYTES", 8 * 1024)
    with pytest.raises(package.NotAPackage, match="uncompressed"):
        package.read(path)


def test_hard_links_broken_archives_and_bad_json_are_refused_cleanly(tmp_path):
    with pytest.raises(package.NotAPackage, match="link"):
        path = tmp_path / "hard.tgz"
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("package/ValueSet-x.json")
            info.type, info.linkname = tarfile.LNKTYPE, "etc/passwd"
            archive.addfile(info)
        package.read(str(path))
    whole = open(abdm_tgz(tmp_path / "ok.tgz"), "rb").read()
    (tmp_path / "cut.tgz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(package.NotAPackage):
        package.read(str(tmp_path / "cut.tgz"))
    latin = tgz(tmp_path / "latin.tgz", {"package/package.json": MANIFEST,
                                         "package/CodeSystem-x.json": '{"resourceType": "CodeSystem", "title": "é"}'
                                         .encode("latin-1")})
    with pytest.raises(package.NotAPackage, match="not JSON"):
        package.read(latin)
    deep = tgz(tmp_path / "deep.tgz", {"package/package.json": MANIFEST, "package/x.json": b"[" * 100_000})
    with pytest.raises(package.NotAPackage, match="not JSON"):
        package.read(deep)


def test_a_hard_linked_file_or_a_linked_package_folder_is_refused(tmp_path):
    folder = tmp_path / "pkg"
    shutil.copytree(ABDM, folder)
    os.link(folder / "ValueSet-ndhm-diagnosis-use.json", tmp_path / "elsewhere.json")
    with pytest.raises(package.NotAPackage, match="link"):
        package.read(str(folder))
    outer = tmp_path / "outer"
    outer.mkdir()
    os.symlink(ABDM, outer / "package")
    with pytest.raises(package.NotAPackage, match="link"):
        package.read(str(outer))


def _with(*resources) -> package.Package:
    found = package.read(ABDM)
    found.resources.extend(resources)
    return found


@pytest.mark.parametrize("own", [
    {"resourceType": "CodeSystem", "url": "https://medport.health/fhir/CodeSystem/facility-type", "version": "99",
     "status": "active", "content": "complete", "concept": [{"code": "rogue"}]},
    {"resourceType": "StructureDefinition", "url": "https://medport.health/fhir/StructureDefinition/medport-patient",
     "version": "99", "name": "Rogue", "status": "active", "kind": "resource", "abstract": False, "type": "Patient"},
    {"resourceType": "NamingSystem", "id": "uhid", "name": "Rogue", "status": "active", "kind": "identifier",
     "date": "2026-01-01", "uniqueId": [{"type": "uri", "value": "urn:rogue"}]},
    {"resourceType": "NamingSystem", "id": "other", "name": "Rogue", "status": "active", "kind": "identifier",
     "date": "2026-01-01", "uniqueId": [{"type": "uri", "value": "{uhid}"}]},
])
def test_a_package_cannot_redefine_med_ports_own(ctx, own):
    own = json.loads(json.dumps(own).replace("{uhid}", ctx.uhid_system))
    before = {k: ctx.store.read(*k.split("/")).version for k in ("CodeSystem/facility-type", "NamingSystem/uhid")}
    with pytest.raises(package.NotAPackage, match="Med-Port's own"):
        install.install(ctx, _with(own))
    assert {k: ctx.store.read(*k.split("/")).version for k in before} == before
    assert definitions(ctx.store).resolve("StructureDefinition", ABDM_PATIENT) is None      # nothing at all


def test_shipped_core_and_same_version_definitions_are_kept_as_shipped(ctx):
    core = {"resourceType": "StructureDefinition", "url": "http://hl7.org/fhir/StructureDefinition/Patient",
            "version": "9.9.9", "name": "Patient", "status": "active", "kind": "resource", "abstract": False,
            "type": "Patient"}
    gender = {"resourceType": "CodeSystem", "url": "http://hl7.org/fhir/administrative-gender",
              "status": "active", "content": "complete", "concept": [{"code": "rogue"}]}
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    same = {**core, "url": us_core, "version": "5.0.1", "name": "USCorePatientProfile"}
    newer = {**same, "version": "6.1.0"}
    counts = install.install(ctx, _with(core, gender, same, newer))
    assert counts["kept"] == 3 and counts["created"] == CONTENT + 1
    defs = definitions(ctx.store)
    assert defs.resolve("StructureDefinition", core["url"])["version"] == "4.0.1"
    assert "rogue" not in json.dumps(defs.resolve("CodeSystem", gender["url"]))
    assert "snapshot" in defs.resolve("StructureDefinition", f"{us_core}|5.0.1")              # the shipped one
    assert defs.resolve("StructureDefinition", f"{us_core}|6.1.0")["name"] == "USCorePatientProfile"


def test_what_a_package_says_reaches_the_terminal_escaped(tmp_path, capsys):
    store = make_settings(tmp_path).store
    named = tgz(tmp_path / "named.tgz", {"package/package.json": json.dumps(
        {"name": "evil\x1b]0;owned\x07", "version": "1.0.0"}).encode()})
    linked = tgz(tmp_path / "linked.tgz", {"package/package.json": MANIFEST},
                 {"package/\x1b[2Jx.json": "/etc/passwd"})
    for path in (named, linked):
        assert main(["ig", "install", path, "--store", store]) == 2
        err = capsys.readouterr().err
        assert "\x1b" not in err and "\\x1b" in err, err
