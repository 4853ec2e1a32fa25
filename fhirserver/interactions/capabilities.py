"""capabilities: GET [base]/metadata{?mode=full|normative|terminology} (http://hl7.org/fhir/R4/http.html#capabilities).

full (the default) and normative answer the CapabilityStatement (a normative resource in R4: all of it is
normative); terminology answers a TerminologyCapabilities naming the code systems the server ships (terminology.html)
and how its $expand pages. Any other mode is a 400."""
from __future__ import annotations

import functools

from ..capability import capability_statement, software
from ..errors import BadRequest

MODES = ("full", "normative", "terminology")


def capabilities(settings, started: str, mode: str | None) -> dict:
    if mode is None or mode in ("full", "normative"):
        return capability_statement(settings, started)
    if mode == "terminology":
        return terminology_capabilities(settings, started)
    raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}", expression=("mode",))


def terminology_capabilities(settings, started: str) -> dict:
    return {
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": started,
        "publisher": "Med-Port",
        "kind": "instance",
        **software(settings),
        "codeSystem": [{"uri": uri} for uri in _code_systems()],
        "expansion": {"hierarchical": False, "paging": True},      # ValueSet/$expand takes offset and count
    }


@functools.lru_cache(maxsize=1)
def _code_systems() -> tuple[str, ...]:
    """The canonical URLs of the code systems the server ships (conformance/catalogue.py), once."""
    from ..conformance import catalogue
    return tuple(sorted({cs["url"] for cs in catalogue.all_of("CodeSystem") if isinstance(cs.get("url"), str)}))
