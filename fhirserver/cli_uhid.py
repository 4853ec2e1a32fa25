"""`medport uhid ...` and `medport card ...`: the Unique Health ID and the health cards, from a shell
(the registration desk, the operator, a verifier without a network)."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable


def add_parsers(commands, settings_of: Callable) -> None:
    uhid = commands.add_parser("uhid", help="the Unique Health ID")
    sub = uhid.add_subparsers(dest="uhid_command", required=True)
    p = sub.add_parser("check", help="is this text a valid UHID? prints its canonical form")
    p.add_argument("value")
    p.set_defaults(run=_uhid_check)
    p = sub.add_parser("backfill", help="give a UHID to every Patient stored before UHIDs were issued")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--base-url", help="base URL the server runs under (MEDPORT_BASE_URL)")
    p.set_defaults(run=lambda args: _with_ctx(args, settings_of, _backfill))

    card = commands.add_parser("card", help="SMART Health Cards: issue, verify, rotate the issuer key")
    sub = card.add_subparsers(dest="card_command", required=True)
    p = sub.add_parser("verify", help="check a card: a .smart-health-card file, a file holding the JWS or shc:/ "
                                      "text, or that text itself; exit 0 when valid, 1 when not")
    p.add_argument("card", metavar="FILE|QR-TEXT")
    p.add_argument("--trust", action="append", default=[], metavar="ISSUER=JWKS-FILE",
                   help="also trust this issuer, with its keys from a file (offline; repeatable)")
    p.add_argument("--store", help="store URL (MEDPORT_STORE): this server's issuer keys")
    p.add_argument("--base-url", help="base URL of this server, the issuer of its cards (MEDPORT_BASE_URL)")
    p.set_defaults(run=lambda args: _with_ctx(args, settings_of, _verify))
    p = sub.add_parser("issue", help="issue a patient's card (recorded as an AuditEvent)")
    p.add_argument("patient_id")
    p.add_argument("--immunizations", action="store_true", help="add the completed immunizations")
    p.add_argument("--out", help="write the .smart-health-card file here (default: standard output)")
    p.add_argument("--png", help="also write the QR code image here")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--base-url", help="base URL the server runs under (MEDPORT_BASE_URL)")
    p.set_defaults(run=lambda args: _with_ctx(args, settings_of, _issue))
    p = sub.add_parser("revoke", help="revoke every card of a patient issued until now (recorded as an AuditEvent)")
    p.add_argument("patient_id")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--base-url", help="base URL the server runs under (MEDPORT_BASE_URL)")
    p.set_defaults(run=lambda args: _with_ctx(args, settings_of, _revoke))
    p = sub.add_parser("rotate-key", help="sign new cards with a new key; cards already issued stay valid")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=lambda args: _with_ctx(args, settings_of, _rotate))


def _with_ctx(args, settings_of: Callable, action: Callable) -> int:
    from .context import ServerContext
    from .errors import FhirError
    from .storage import open_store
    settings = settings_of(args)
    store = open_store(settings)
    try:
        return action(args, ServerContext(settings, store))
    except (FhirError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _uhid_check(args) -> int:
    from .uhid import number
    try:
        print(number.canonical(args.value))
        return 0
    except number.InvalidUhid as e:
        print(e, file=sys.stderr)
        return 1


def _backfill(args, ctx) -> int:
    from .uhid.backfill import backfill
    problems: list = []
    done = backfill(ctx, problems=problems)
    print(f"{done} patient(s) given a UHID")
    for pid, why in problems:
        print(f"Patient/{pid} left as it is: {why}", file=sys.stderr)
    return 1 if problems else 0


def _verify(args, ctx) -> int:
    from .health_cards.checking import verify_card
    text = args.card
    if not text.lower().startswith(("shc:/", "ey")) and os.path.exists(text):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    others = {}
    for spec in args.trust:
        issuer, sep, path = spec.partition("=")
        if not sep:
            raise ValueError(f"--trust takes ISSUER=JWKS-FILE, got {spec!r}")
        with open(path, encoding="utf-8") as f:
            others[issuer.rstrip("/")] = json.load(f)
    verdict = verify_card(ctx, text, others)
    print("VALID" if verdict.valid else "INVALID")
    print(f"issuer: {verdict.issuer}")
    if verdict.valid and verdict.bundle:
        patient = verdict.bundle["entry"][0]["resource"]
        name = (patient.get("name") or [{}])[0]
        print(f"name: {' '.join([*name.get('given', []), name.get('family', '')]).strip()}")
        print(f"birth date: {patient.get('birthDate')}")
        for ident in patient.get("identifier") or ():
            print(f"UHID: {ident.get('value')}")
    for problem in verdict.problems:
        print(f"problem: {problem}")
    return 0 if verdict.valid else 1


def _issue(args, ctx) -> int:
    from .health_cards import issuance, qr
    card = issuance.issue(ctx, args.patient_id, args.immunizations)
    text = json.dumps({"verifiableCredential": [card]})
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text)
    if args.png:
        with open(args.png, "wb") as f:
            f.write(qr.png(qr.to_numeric(card)))
    return 0


def _revoke(args, ctx) -> int:
    from .operations import invoke
    out = invoke(ctx, "revoke-health-cards", "Patient", args.patient_id, [], None)
    print(f"cards of Patient/{args.patient_id} issued before {out['parameter'][0]['valueInstant']} are revoked")
    return 0


def _rotate(args, ctx) -> int:
    from .health_cards.issuer_keys import IssuerKeys
    key = IssuerKeys(ctx.store).rotate()
    print(f"new issuer key {key.kid}; earlier keys stay published at {ctx.base}/.well-known/jwks.json")
    return 0
