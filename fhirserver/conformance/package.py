"""Reading a FHIR package (NPM package format, https://confluence.hl7.org/display/FHIR/NPM+Package+Specification;
packages.fhir.org): a .tgz whose members live under package/, with package/package.json naming it, or the
same files unpacked in a folder (FOLDER/package/package.json or FOLDER/package.json).

Only the resources at the top of package/ are the package's content; examples (package/example/,
package/examples/ ...) and other folders are not. Read in memory, bounded: at most MAX_MEMBERS members,
MAX_FILE_BYTES each and MAX_TOTAL_BYTES in all; a member that is a link, a device, or whose path is
absolute or climbs out (..) makes the package refused. Nothing is written to disk."""
from __future__ import annotations

import os
import posixpath
import tarfile
from dataclasses import dataclass, field

from .. import jsonio
from ..errors import FhirError

MAX_MEMBERS = 20_000
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
SKIPPED = ("package.json", ".index.json")


class NotAPackage(ValueError):
    """The path is not a FHIR package, or one this reader refuses (its message says why)."""


@dataclass
class Package:
    name: str
    version: str
    resources: list[dict] = field(default_factory=list)     # the package's resources (any type)


def read(path: str) -> Package:
    """The package at path (a .tgz or a folder)."""
    if os.path.isdir(path):
        return _folder(path)
    if os.path.isfile(path):
        return _tarball(path)
    raise NotAPackage(f"{path}: no such file or folder")


def _manifest(data: bytes, where: str) -> tuple[str, str]:
    try:
        manifest = jsonio.loads(data)
    except FhirError as e:
        raise NotAPackage(f"{where}: package.json is not JSON ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("name"), str) \
            or not isinstance(manifest.get("version"), str):
        raise NotAPackage(f"{where}: package.json must name the package (name, version)")
    return manifest["name"], manifest["version"]


def _resource(data: bytes, where: str) -> dict | None:
    try:
        doc = jsonio.loads(data)
    except FhirError as e:
        raise NotAPackage(f"{where}: not JSON ({e})") from None
    return doc if isinstance(doc, dict) and isinstance(doc.get("resourceType"), str) else None


def _tarball(path: str) -> Package:
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise NotAPackage(f"{path}: not a package (.tgz) nor a folder: {e}") from None
    with archive:
        files: dict[str, bytes] = {}
        total = 0
        for n, member in enumerate(archive):
            if n >= MAX_MEMBERS:
                raise NotAPackage(f"{path}: more than {MAX_MEMBERS} members")
            name = _safe_name(member.name, path)
            if member.isdir():
                continue
            if not member.isfile():
                raise NotAPackage(f"{path}: {member.name} is a link or a special file; a package holds files only")
            if member.size > MAX_FILE_BYTES:
                raise NotAPackage(f"{path}: {member.name} is larger than {MAX_FILE_BYTES} bytes")
            total += member.size
            if total > MAX_TOTAL_BYTES:
                raise NotAPackage(f"{path}: more than {MAX_TOTAL_BYTES} bytes in all")
            if _is_content(name) or name == "package/package.json":
                f = archive.extractfile(member)
                files[name] = f.read(MAX_FILE_BYTES + 1) if f is not None else b""
    if "package/package.json" not in files:
        raise NotAPackage(f"{path}: not a FHIR package (no package/package.json)")
    package = Package(*_manifest(files.pop("package/package.json"), path))
    for name in sorted(files):
        resource = _resource(files[name], f"{path}:{name}")
        if resource is not None:
            package.resources.append(resource)
    return package


def _safe_name(name: str, path: str) -> str:
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../") or "\\" in name:
        raise NotAPackage(f"{path}: the member {name!r} lies outside the package")
    return normal


def _is_content(name: str) -> bool:
    """A file at the top of package/ that may hold a resource."""
    folder, base = posixpath.split(name)
    return folder == "package" and base.endswith(".json") and base not in SKIPPED


def _folder(path: str) -> Package:
    root = os.path.join(path, "package")
    if not os.path.isfile(os.path.join(root, "package.json")):
        root = path
    manifest = os.path.join(root, "package.json")
    if not os.path.isfile(manifest):
        raise NotAPackage(f"{path}: not a FHIR package (no package.json in it nor in package/)")
    names = sorted(os.listdir(root))
    if len(names) > MAX_MEMBERS:
        raise NotAPackage(f"{path}: more than {MAX_MEMBERS} files")
    package = Package(*_manifest(_read_file(manifest, path), path))
    total = 0
    for name in names:
        full = os.path.join(root, name)
        if not name.endswith(".json") or name in SKIPPED or os.path.isdir(full):
            continue
        data = _read_file(full, path)
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise NotAPackage(f"{path}: more than {MAX_TOTAL_BYTES} bytes in all")
        resource = _resource(data, full)
        if resource is not None:
            package.resources.append(resource)
    return package


def _read_file(full: str, path: str) -> bytes:
    if os.path.islink(full) or not os.path.isfile(full):
        raise NotAPackage(f"{path}: {os.path.basename(full)} is a link or a special file; a package holds files only")
    if os.path.getsize(full) > MAX_FILE_BYTES:
        raise NotAPackage(f"{path}: {os.path.basename(full)} is larger than {MAX_FILE_BYTES} bytes")
    with open(full, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)
