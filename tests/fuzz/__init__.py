"""Fuzz tests (security issue 12): schemathesis against /fhir/openapi.json and hypothesis fuzzers of
FHIR search strings and Bundles, all in-process against the WSGI app. Budget: tests/fuzz/_budget.py."""
