"""`medport slots generate` (fhirserver/cli_slots.py), run through its own parsers (the line that adds
them to fhirserver/cli.py is all that joins it to `medport`)."""
from __future__ import annotations

import argparse

from fhirserver import cli_slots, create_app
from tests.conftest import FHIR_JSON, make_settings


def medport_slots(settings, *argv) -> int:
    parser = argparse.ArgumentParser(prog="medport")
    cli_slots.add_parsers(parser.add_subparsers(dest="command", required=True), lambda args: settings)
    args = parser.parse_args(["slots", *argv])
    return args.run(args)


def test_slots_generate_writes_the_missing_slots(tmp_path, capsys):
    settings = make_settings(tmp_path)
    client = create_app(settings).test_client()
    for resource in ({"resourceType": "Location", "id": "opd", "hoursOfOperation": [
                        {"daysOfWeek": ["mon", "tue"], "openingTime": "09:00:00", "closingTime": "10:00:00"}]},
                     {"resourceType": "Schedule", "id": "cardio", "actor": [{"reference": "Location/opd"}]}):
        r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                       headers={"Content-Type": FHIR_JSON})
        assert r.status_code == 201
    argv = ("generate", "cardio", "--from", "2031-03-03", "--to", "2031-03-09", "--minutes", "15")
    assert medport_slots(settings, *argv) == 0
    assert "8 slots created, 0 already there" in capsys.readouterr().out
    assert medport_slots(settings, *argv) == 0
    assert "0 slots created, 8 already there" in capsys.readouterr().out
    found = client.get("/fhir/Slot?schedule=Schedule/cardio&_sort=start").get_json()
    assert found["total"] == 8 and found["entry"][0]["resource"]["start"] == "2031-03-03T09:00:00Z"
    assert medport_slots(settings, "generate", "absent", "--from", "2031-03-03", "--to", "2031-03-03",
                         "--minutes", "15") == 2
    assert "absent" in capsys.readouterr().err
