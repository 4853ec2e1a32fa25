"""The official R4 definitions the server ships under profiles/, loaded once per process."""
from __future__ import annotations

import functools
import json
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
# installed from a wheel: package data fhirserver/profiles (setup.py); a checkout: the top-level profiles/
PROFILES_DIR = next((d for d in (os.path.join(_HERE, "profiles"), os.path.join(os.path.dirname(_HERE), "profiles"))
                     if os.path.isdir(d)), os.path.join(os.path.dirname(_HERE), "profiles"))
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
