"""Build profiles/summary-elements.json: per resource type, the top-level elements marked
isSummary ("summary") and those with min >= 1 ("mandatory") in the R4 StructureDefinitions
(search.html#summary: _summary=true returns the first, _summary=text the second plus text).

    python -m fhirserver.search.build_summary /path/to/fhir-r4   # reads profiles-resources.json
"""
from __future__ import annotations

import json
import os
import sys

from ..definitions import profile_path, resource_types


def build(src_dir: str) -> dict[str, list[str]]:
    with open(os.path.join(src_dir, "profiles-resources.json"), encoding="utf-8") as f:
        bundle = json.load(f)
    out = {}
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource" \
                or sd.get("derivation") == "constraint" or sd["type"] not in resource_types():
            continue
        summary, mandatory = set(), set()
        for el in sd["snapshot"]["element"]:
            path = el["path"].split(".")
            if len(path) == 2:
                name = path[1].replace("[x]", "")
                if el.get("isSummary") or el.get("min", 0) > 0:
                    summary.add(name)
                if el.get("min", 0) > 0:
                    mandatory.add(name)
        out[sd["type"]] = {"summary": sorted(summary), "mandatory": sorted(mandatory)}
    return dict(sorted(out.items()))


if __name__ == "__main__":
    result = build(sys.argv[1])
    with open(profile_path("summary-elements.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=0, sort_keys=True)
    print(f"{len(result)} resource types written")
