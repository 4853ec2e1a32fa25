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
