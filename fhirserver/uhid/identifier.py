"""The UHID as a FHIR Identifier (datatypes.html#Identifier) under the server's UHID system."""
from __future__ import annotations

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TYPE = {"coding": [{"system": V2_0203, "code": "NI", "display": "National unique individual identifier"}],
        "text": "UHID"}
ASSIGNER = {"display": "Med-Port UHID registry"}
CONFIG_KIND = "config"


def uhid_system(settings) -> str:
    """The identifier system URI: configured, else [base]/sid/uhid."""
    return settings.uhid_system or f"{settings.base_url}/sid/uhid"


def pinned_system(store, settings) -> str:
    """The system a store's UHIDs are issued under, fixed by its first start: a later change of the
    base URL must not make every patient look UHID-less (and so be issued a second one). A different
    system configured explicitly is refused at start-up."""
    if store.get_record(CONFIG_KIND, "uhid-system") is None:     # read first: start-up takes no write lock
        store.add_record(CONFIG_KIND, "uhid-system", {"system": uhid_system(settings)})
    return read_pinned_system(store, settings)


def read_pinned_system(store, settings) -> str:
    """The pinned system, read only (pinned_system, part of the init step, writes it first); a
    store not initialised yet answers the system the settings name."""
    record = store.get_record(CONFIG_KIND, "uhid-system")
    pinned = record["system"] if record else uhid_system(settings)
    if settings.uhid_system and settings.uhid_system != pinned:
        raise SystemExit(f"MEDPORT_UHID_SYSTEM is {settings.uhid_system!r}, but this store's UHIDs were issued "
                         f"under {pinned!r}: unset it (or set it to that value)")
    return pinned


def make(system: str, value: str) -> dict:
    return {"use": "official", "type": TYPE, "system": system, "value": value, "assigner": ASSIGNER}


def completed(identifier: dict, value: str) -> dict:
    """A supplied UHID identifier in canonical form, with the type and assigner it lacks."""
    out = dict(identifier, value=value)
    out.setdefault("use", "official")
    out.setdefault("type", TYPE)
    out.setdefault("assigner", ASSIGNER)
    return out


def find(resource: dict, system: str) -> list[tuple[int, dict]]:
    """(position, identifier) of each identifier under the UHID system."""
    ids = resource.get("identifier")
    if not isinstance(ids, list):
        return []
    return [(i, ident) for i, ident in enumerate(ids) if isinstance(ident, dict) and ident.get("system") == system]


def value_of(resource: dict, system: str) -> str | None:
    found = find(resource, system)
    return found[0][1].get("value") if found else None
