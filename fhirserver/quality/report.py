"""The `$data-quality` figures from the store's counters (docs/data-quality.md, "The report"): one group
per (custodian, type), with the conformance split, the most failed rules and the code systems used."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import facts as f

TOP_RULES = 10        # failing rules shown per group, most failed first
TOP_SYSTEMS = 25      # code systems shown per group, most used first
NONE = "none"         # the custodian parameter's value for records no organisation holds


@dataclass
class Group:
    custodian: str                    # "Organization/x", "" when none holds them
    type: str
    total: int = 0
    conformance: dict = field(default_factory=dict)       # conforms | not-conforming | unchecked -> n
    no_uhid_subject: int = 0
    rules: dict = field(default_factory=dict)             # "<rule>:<key>" -> n
    systems: dict = field(default_factory=dict)           # system -> n

    def top_rules(self) -> list[tuple[str, str, int]]:
        """(rule, key, n), most failed first (then by name)."""
        ranked = sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_RULES]
        return [(*k.split(":", 1), n) for k, n in ranked]

    def top_systems(self) -> list[tuple[str, int]]:
        return sorted(self.systems.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SYSTEMS]


def groups(counts: list[tuple]) -> list[Group]:
    """Groups from Store.quality_counts rows (custodian, type, dimension, key, n), by custodian then type."""
    out: dict[tuple[str, str], Group] = {}
    for custodian, rtype, dim, key, n in counts:
        g = out.get((custodian, rtype)) or out.setdefault((custodian, rtype), Group(custodian, rtype))
        if dim == f.TOTAL:
            g.total = n
        elif dim == f.CONFORMANCE:
            g.conformance[key] = n
        elif dim == f.NO_UHID:
            g.no_uhid_subject = n
        elif dim == f.RULE:
            g.rules[key] = n
        elif dim == f.SYSTEM:
            g.systems[key] = n
    return [out[k] for k in sorted(out)]


def custodian_filter(value: str | None) -> str | None:
    """The store's custodian key of the `custodian` parameter: "none" -> "" (records no organisation
    holds); a reference as given ("Organization/x"); absent: every custodian."""
    if value is None:
        return None
    return "" if value == NONE else value


def parameters(found: list[Group], generated: str) -> dict:
    """The answer as a Parameters resource (profiles/operations/data-quality.json)."""
    return {"resourceType": "Parameters",
            "parameter": [{"name": "generated", "valueInstant": generated}] + [_group(g) for g in found]}


def _group(g: Group) -> dict:
    parts = [{"name": "custodian", "valueReference": {"reference": g.custodian}}] if g.custodian else []
    parts += [{"name": "type", "valueCode": g.type},
              {"name": "total", "valueInteger": g.total},
              {"name": "conforming", "valueInteger": g.conformance.get(f.CONFORMS, 0)},
              {"name": "notConforming", "valueInteger": g.conformance.get(f.NOT_CONFORMING, 0)},
              {"name": "unchecked", "valueInteger": g.conformance.get(f.UNCHECKED, 0)},
              {"name": "lacksUhidSubject", "valueInteger": g.no_uhid_subject}]
    parts += [{"name": "failingRule", "part": [{"name": "rule", "valueCode": rule}, {"name": "key", "valueString": key},
                                               {"name": "count", "valueInteger": n}]} for rule, key, n in g.top_rules()]
    parts += [{"name": "codeSystem", "part": [{"name": "system", "valueUri": s}, {"name": "count", "valueInteger": n}]}
              for s, n in g.top_systems()]
    return {"name": "group", "part": parts}
