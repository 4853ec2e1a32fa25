"""Server-owned entries in a resource's meta (resource.html#Meta): the write-origin tag and the
custodian extension. The server writes them; whatever a client sent under the same key is dropped."""
from __future__ import annotations


def replace(resource: dict, field: str, key: str, value: str, item: dict | None) -> None:
    """Drop every entry of meta[field] whose `key` is `value`, then add `item` (if any)."""
    meta = resource.get("meta")
    kept = [x for x in (meta or {}).get(field, ()) if not (isinstance(x, dict) and x.get(key) == value)]
    if item is not None:
        kept.append(item)
    if kept:
        resource["meta"] = {**(meta or {}), field: kept}
    elif meta and field in meta:
        resource["meta"] = {k: v for k, v in meta.items() if k != field}


def find(resource: dict, field: str, key: str, value: str) -> dict | None:
    """The entry of meta[field] whose `key` is `value`, else None."""
    for x in (resource.get("meta") or {}).get(field, ()):
        if isinstance(x, dict) and x.get(key) == value:
            return x
    return None
