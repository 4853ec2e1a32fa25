"""The official R4 definitions the server ships under profiles/, loaded once per process."""
from __future__ import annotations

import functools
import json
import os

PROFILES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "profiles")
FHIR_VERSION = "4.0.1"


def profile_path(name: str) -> str:
    return os.path.join(PROFILES_DIR, name)


@functools.lru_cache(maxsize=None)
def load_json(name: str):
    with open(profile_path(name), "rb") as f:
        return json.load(f)


@functools.lru_cache(maxsize=1)
def resource_types() -> frozenset[str]:
    """Every R4 resource type (from the official JSON schema's discriminator)."""
    return frozenset(load_json("fhir.schema.json")["discriminator"]["mapping"])


@functools.lru_cache(maxsize=1)
def search_parameters() -> dict[str, dict[str, dict]]:
    """{resource type: {code: SearchParameter}} from the official R4 bundle."""
    out: dict[str, dict[str, dict]] = {}
    for entry in load_json("search-parameters.json")["entry"]:
        sp = entry["resource"]
        for base in sp.get("base", ()):
            targets = resource_types() if base == "Resource" or base == "DomainResource" else (base,)
            for t in targets:
                out.setdefault(t, {})[sp["code"]] = sp
    return out
