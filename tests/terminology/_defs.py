"""A Terminology over a few given definitions (first) and the shipped catalogue (then)."""
from __future__ import annotations

import json
import os

from fhirserver.conformance import catalogue
from fhirserver.conformance.definitions import split_canonical
from fhirserver.terminology import Terminology

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "terminology")


def example(name: str) -> dict:
    with open(os.path.join(DATA, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def terminology(*resources: dict) -> Terminology:
    def resolve(rtype, canonical):
        url, version = split_canonical(canonical)
        for r in resources:
            if r["resourceType"] == rtype and r.get("url") == url and (version is None or r.get("version") == version):
                return r
        return catalogue.shipped(rtype, url, version)
    return Terminology(None, resolve=resolve)
