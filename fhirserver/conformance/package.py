"""Reading a FHIR package (NPM package format, https://confluence.hl7.org/display/FHIR/NPM+Package+Specification;
packages.fhir.org): a .tgz whose members live under package/, with package/package.json naming it, or the
same files unpacked in a folder (FOLDER/package/package.json or FOLDER/package.json).

Only the resources at the top of package/ are the package's content; examples (package/example/,
package/examples/ ...) and other folders are not. Read in memory, as a stream, bounded: at most
MAX_MEMBERS members, MAX_FILE_BYTES each and MAX_TOTAL_BYTES in all, counted on the bytes really
decompressed as well as on the sizes the headers declare (a gzip bomb stops at the bound, a header's own
pax or long-name part at MAX_HEADER_BYTES); a member that is a link (symbolic or hard), a sparse or
special file, or whose path is absolute or climbs out (..) makes the package refused, as does a folder's
file with other hard links or a `package` folder that is a link. Nothing is written to disk."""
from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field

from .. import jsonio
from ..errors import FhirError

MAX_MEMBERS = 20_000
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024     # the archive uncompressed, and the files' sizes in all
MAX_HEADER_BYTES = 64 * 1024            # a member's pax or GNU long-name header
SKIPPED = ("package.json", ".index.json")
_NAME = re.compile(r"[A-Za-z0-9@][A-Za-z0-9._@/-]{0,213}")       # npm package names (FHIR: hl7.fhir.us.core)
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}")


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
    if not _NAME.fullmatch(manifest["name"]) or not _VERSION.fullmatch(manifest["version"]):
        # printed to the operator's terminal: no control characters (escape sequences)
        raise NotAPackage(f"{where}: package.json names the package {manifest['name'][:100]!r} "
                          f"version {manifest['version'][:100]!r}: not an npm package name and version")
    return manifest["name"], manifest["version"]


def _resource(data: bytes, where: str) -> dict | None:
    try:
        doc = jsonio.loads(data)
    except FhirError as e:
        raise NotAPackage(f"{where}: not JSON ({e})") from None
    return doc if isinstance(doc, dict) and isinstance(doc.get("resourceType"), str) else None


def _tarball(path: str) -> Package:
    try:
        with open(path, "rb") as raw, _decompressed(raw, path) as stream:
            files = _members(tarfile.open(fileobj=_Bounded(stream, path), mode="r|", tarinfo=_Header), path)
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise NotAPackage(f"{path}: not a package (.tgz) nor a folder: {e}") from None
    if "package/package.json" not in files:
        raise NotAPackage(f"{path}: not a FHIR package (no package/package.json)")
    package = Package(*_manifest(files.pop("package/package.json"), path))
    for name in sorted(files):
        resource = _resource(files[name], f"{path}:{name!r}")
        if resource is not None:
            package.resources.append(resource)
    return package


def _decompressed(raw, path: str):
    """The tar stream inside a .tgz (gzip), a .tar.bz2, .tar.xz or a plain .tar, by its first bytes."""
    head = raw.peek(6)[:6] if hasattr(raw, "peek") else b""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    return contextlib.nullcontext(raw)


class _Bounded(io.RawIOBase):
    """The uncompressed archive, refused past MAX_TOTAL_BYTES before the bytes are read: tarfile reads a
    pax or GNU long-name header whole into memory, whatever size it declares (a tar bomb)."""

    def __init__(self, inner, path: str):
        self._inner, self._path, self._read = inner, path, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        room = MAX_TOTAL_BYTES - self._read
        data = self._inner.read(room + 1 if n is None or n < 0 else min(n, room + 1))
        self._read += len(data)
        if self._read > MAX_TOTAL_BYTES:
            raise NotAPackage(f"{self._path}: more than {MAX_TOTAL_BYTES} bytes in all (uncompressed)")
        return data


class _Header(tarfile.TarInfo):
    """A member header whose extended (pax) or GNU long-name part is refused past MAX_HEADER_BYTES before
    it is read (tarfile reads it whole into memory)."""

    def _proc_pax(self, tarfile):
        self._bounded()
        return super()._proc_pax(tarfile)

    def _proc_gnulong(self, tarfile):
        self._bounded()
        return super()._proc_gnulong(tarfile)

    def _bounded(self) -> None:
        if self.size > MAX_HEADER_BYTES:
            raise NotAPackage(f"a member's extended header declares {self.size} bytes (at most {MAX_HEADER_BYTES})")


def _members(archive, path: str) -> dict[str, bytes]:
    """package.json and the content files of a tar stream, each bounded (see the module's docstring)."""
    files: dict[str, bytes] = {}
    total = 0
    for n, member in enumerate(archive):
        if n >= MAX_MEMBERS:
            raise NotAPackage(f"{path}: more than {MAX_MEMBERS} members")
        name = _safe_name(member.name, path)
        if member.isdir():
            continue
        if not member.isreg() or member.issparse():
            raise NotAPackage(f"{path}: {member.name!r} is a link or a special file; a package holds files only")
        if member.size > MAX_FILE_BYTES:
            raise NotAPackage(f"{path}: {member.name!r} is larger than {MAX_FILE_BYTES} bytes")
        total += member.size
        if total > MAX_TOTAL_BYTES:
            raise NotAPackage(f"{path}: more than {MAX_TOTAL_BYTES} bytes in all")
        if _is_content(name) or name == "package/package.json":
            f = archive.extractfile(member)
            files[name] = f.read(MAX_FILE_BYTES + 1) if f is not None else b""
    return files


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
    if os.path.islink(root):
        raise NotAPackage(f"{path}: its package folder is a link; a package holds files only")
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
    if os.path.islink(full) or not os.path.isfile(full) or os.stat(full).st_nlink > 1:
        raise NotAPackage(f"{path}: {os.path.basename(full)!r} is a link or a special file; a package holds files only")
    if os.path.getsize(full) > MAX_FILE_BYTES:
        raise NotAPackage(f"{path}: {os.path.basename(full)!r} is larger than {MAX_FILE_BYTES} bytes")
    with open(full, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)
