"""The $data-quality page escapes every value (quality/page.py): custodians, types, rule keys and code
systems are client data; and the report's grouping and ranking (quality/report.py)."""
from __future__ import annotations

from fhirserver.quality import page, report

EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_every_value_is_escaped():
    g = report.Group(f"Organization/{EVIL}", f"Observation{EVIL}", total=3, conformance={"conforms": 1},
                     rules={f"invariant:{EVIL}": 2}, systems={EVIL: 3})
    html = page.render([g], f"2026-12-05T00:00:00Z{EVIL}")
    assert "<script>" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 5    # generated, custodian, type, key, system
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" in html


def test_groups_rank_rules_and_systems_and_fill_zeros():
    counts = [("Organization/a", "Observation", "total", "", 5), ("Organization/a", "Observation", "conformance",
              "not-conforming", 5), ("Organization/a", "Observation", "rule", "invariant:obs-6", 2),
              ("Organization/a", "Observation", "rule", "binding:http://vs|1", 4),
              ("Organization/a", "Observation", "system", "http://loinc.org", 5), ("", "Patient", "total", "", 1),
              ("", "Patient", "conformance", "unchecked", 1), ("", "Patient", "no-uhid-subject", "", 1)]
    found = report.groups(counts)
    assert [(g.custodian, g.type) for g in found] == [("", "Patient"), ("Organization/a", "Observation")]
    assert found[1].top_rules() == [("binding", "http://vs|1", 4), ("invariant", "obs-6", 2)]
    answer = report.parameters(found, "2026-12-05T00:00:00Z")
    patient = answer["parameter"][1]["part"]
    assert [p["name"] for p in patient][:1] == ["type"]           # no custodian part when none holds them
    assert {p["name"]: p.get("valueInteger") for p in patient}["lacksUhidSubject"] == 1
    assert {p["name"]: p.get("valueInteger") for p in patient}["conforming"] == 0
