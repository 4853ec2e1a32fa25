"""read and vread (http://hl7.org/fhir/R4/http.html#read, #vread)."""
from __future__ import annotations

from ..bounds import is_digits, parse_int
from ..errors import Gone, NotFound
from .common import Result, check_type, current_or_raise


def read(ctx, type: str, id: str) -> Result:
    check_type(type)
    ctx.access.check_visible(ctx.search_visible, "read", type, id)
    return Result(current_or_raise(ctx.store.read(type, id), type, id))


def vread(ctx, type: str, id: str, version_id: str) -> Result:
    check_type(type)
    if not is_digits(version_id):
        raise NotFound(f"{type}/{id} has no version '{version_id}'")
    ctx.access.check_visible(ctx.search_visible, "vread", type, id)
    version = ctx.store.vread(type, id, parse_int(version_id, "The version id"))
    if version is None:
        raise NotFound(f"{type}/{id} has no version {version_id}")
    if not ctx.access.versions("vread", type, [version], ctx.base):     # its own content is outside
        raise NotFound(f"{type}/{id} has no version {version_id}")
    if version.deleted:   # http.html#vread: a deleted version answers 410
        raise Gone(f"Version {version_id} of {type}/{id} is a deletion")
    return Result(version)
