"""Malformed numbers sent to the audit log's endpoints (audit_log/routes.py) are a 400 OperationOutcome,
never a server error: digits that are not ASCII ('²', Arabic-Indic), signs, and numbers past int64
(int() refuses more than 4,300 digits), on every integer parameter of every endpoint."""
from __future__ import annotations

from urllib.parse import quote

import pytest

BAD = ["²", "\u0663", "-1", "+1", "1.0", " 1", "", "9" * 20, "9" * 5000]
PARAMS = [("$audit-proof", "index", "size=1"), ("$audit-proof", "size", "index=0"),
          ("$audit-consistency", "from", "to=1"), ("$audit-consistency", "to", "from=1"),
          ("$audit-entries", "start", "end=1"), ("$audit-entries", "end", "start=0")]


@pytest.mark.parametrize("route,name,other", PARAMS)
def test_a_malformed_number_is_a_400(client, route, name, other):
    assert client.get("/fhir/Patient/x").status_code == 404          # the log holds an entry
    for raw in BAD:
        r = client.get(f"/fhir/{route}", query_string=f"{other}&{name}={quote(raw)}")
        assert r.status_code == 400, (raw[:20], r.get_data(as_text=True))
        assert r.get_json()["resourceType"] == "OperationOutcome"
