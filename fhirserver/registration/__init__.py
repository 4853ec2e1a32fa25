"""Self-registration: a person creates their own Patient (with a UHID), their patient account, and
gets their health card, from a web page (/register) or a JSON API (POST /api/registrations).
A hospital registers a walk-in patient through the FHIR API instead (POST Patient; Patient/$match first)."""
