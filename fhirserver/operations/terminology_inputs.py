"""What a terminology operation is asked about (terminology-service.html): the definition (an
instance read through the caller's repository, a resource given inline, or a canonical url resolved
through the definitions) and the coded value (code + system, a Coding, or a CodeableConcept)."""
from __future__ import annotations

from typing import NamedTuple

from .. import jsonio
from ..errors import BadRequest, NotFound

MAX_CODINGS = 20             # codings of one CodeableConcept looked at


class Coded(NamedTuple):
    system: str | None
    code: str
    display: str | None = None
    version: str | None = None


def _first(params: dict, name: str):
    return (params.get(name) or [None])[0]


def definition(ctx, rtype: str, id: str | None, params: dict, *, url: str, resource: str | None,
               version: str | None = None) -> str | dict:
    """The stored instance (by id), the inline resource, or the canonical "url[|version]"."""
    if id is not None:
        found = ctx.repo.read(rtype, id)
        if found is None or found.deleted:
            raise NotFound(f"{rtype}/{id} is not known")
        return jsonio.loads(found.body)
    given = _first(params, resource) if resource else None
    if given is not None:
        if not isinstance(given, dict) or given.get("resourceType") != rtype:
            raise BadRequest(f"Parameter '{resource}' must be a {rtype} resource")
        return given
    canonical = _first(params, url)
    if not isinstance(canonical, str) or not canonical:
        raise BadRequest(f"Say which {rtype}: the instance, '{url}'" + (f" or '{resource}'" if resource else ""))
    wanted = _first(params, version) if version else None
    return f"{canonical}|{wanted}" if wanted else canonical


def _coding(value, name: str) -> Coded:
    if not isinstance(value, dict) or not isinstance(value.get("code"), str):
        raise BadRequest(f"Parameter '{name}' must be a Coding with a code")
    return Coded(value.get("system"), value["code"], value.get("display"), value.get("version"))


def codings(params: dict, *, code: str = "code", system: str | None = "system", coding: str = "coding",
            concept: str | None = "codeableConcept", version: str | None = "version") -> list[Coded]:
    """The coded values asked about (at least one, else 400)."""
    out: list[Coded] = []
    if _first(params, code) is not None:
        value = _first(params, code)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"Parameter '{code}' must be a code")
        out.append(Coded(_first(params, system) if system else None, value, _first(params, "display"),
                         _first(params, version) if version else None))
    if _first(params, coding) is not None:
        c = _coding(_first(params, coding), coding)
        out.append(c._replace(display=c.display or _first(params, "display")))
    cc = _first(params, concept) if concept else None
    if cc is not None:
        listed = cc.get("coding") if isinstance(cc, dict) else None
        if not isinstance(listed, list) or not listed or len(listed) > MAX_CODINGS:
            raise BadRequest(f"Parameter '{concept}' must be a CodeableConcept with 1 to {MAX_CODINGS} codings")
        out.extend(_coding(c, concept) for c in listed)
    if not out:
        raise BadRequest(f"Say what to look at: '{code}'" + (f" and '{system}'" if system else "") +
                         f", '{coding}'" + (f" or '{concept}'" if concept else ""))
    return out
