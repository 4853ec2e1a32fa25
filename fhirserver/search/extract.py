"""Index entries extracted from a resource at write time (search.html#token).

This first version indexes the `identifier` token of every resource type that
has that search parameter; the search engine issue generalises it to every
SearchParameter's FHIRPath expression.
"""
from __future__ import annotations

from ..definitions import search_parameters


def extract(resource: dict) -> dict[str, list[tuple]]:
    rtype = resource["resourceType"]
    tokens: list[tuple] = []
    if "identifier" in search_parameters().get(rtype, {}):
        idents = resource.get("identifier")
        for ident in idents if isinstance(idents, list) else [idents] if idents else []:
            if isinstance(ident, dict) and (ident.get("system") or ident.get("value")):
                tokens.append(("identifier", ident.get("system"), ident.get("value")))
    return {"token": tokens}
