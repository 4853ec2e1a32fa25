"""Data quality for regulators (issue 20, "Data quality for regulators"; docs/data-quality.md).

Every stored version's quality facts (facts.py) are recorded by the one write path, in the write's own
store transaction (record.py): one facts row per current resource and counters per (custodian, type)
moved by the difference between the facts it replaces and its own, so that `$data-quality`
(operations/data_quality.py, report.py, page.py) answers from counters whatever the store holds.
`medport quality rebuild` (rebuild.py) recomputes them from the stored resources.
"""
