"""`medport user ...`, `medport client ...` and `medport keys ...`: the accounts, OAuth clients and
signing keys of the SMART authorization server."""
from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable

from .smart_auth import auth_audit
from .smart_auth.accounts import ROLES, Users
from .smart_auth.clients import CLIENT_TYPES, Clients
from .smart_auth.keys import KIND, SigningKeys


def add_parsers(commands, settings_of: Callable) -> None:
    """Add the `user` and `client` commands to the `medport` subparsers; settings_of(args) -> Settings."""
    user = commands.add_parser("user", help="manage the user accounts of the authorization server")
    users = user.add_subparsers(dest="user_command", required=True)
    p = _leaf(users, "add", "add a user", settings_of, _user_add)
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--fhir-user", help="the user's resource: Patient/1 (patient), Practitioner/1 (practitioner), "
                   "RelatedPerson/1 (related-person: a family proxy, docs/auth.md)")
    p.add_argument("--organization", help="Organization/1 (practitioners)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    p.add_argument("--break-glass", action="store_true",
                   help="may open emergency access to one patient (practitioners; docs/governance.md)")
    _leaf(users, "list", "list users", settings_of, _user_list)
    p = _leaf(users, "disable", "refuse a user's logins from now on", settings_of, _user_disable)
    p.add_argument("username")

    client = commands.add_parser("client", help="manage the registered OAuth clients (apps)")
    clients = client.add_subparsers(dest="client_command", required=True)
    p = _leaf(clients, "add", "register a client", settings_of, _client_add)
    p.add_argument("name")
    p.add_argument("--type", required=True, choices=CLIENT_TYPES)
    p.add_argument("--redirect-uri", action="append", default=[], help="an exact redirect URI (repeatable)")
    p.add_argument("--scope", action="append", default=[], help='scopes the client may ask for: "a b c"')
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--jwks-uri", help="URL of the client's JWKS (confidential-asymmetric)")
    keys.add_argument("--jwks", metavar="FILE", help="file with the client's public JWKS (confidential-asymmetric)")
    p.add_argument("--organization", help="Organization/1 (hospital backend clients)")
    p.add_argument("--regulator", action="store_true",
                   help="a regulator's backend: reads AuditEvent, Provenance and Consent (docs/governance.md)")
    _leaf(clients, "list", "list clients", settings_of, _client_list)
    p = _leaf(clients, "disable", "refuse a client from now on", settings_of, _client_disable)
    p.add_argument("client_id")

    key = commands.add_parser("keys", help="the server's token signing keys (published at /auth/jwks)")
    keys_sub = key.add_subparsers(dest="keys_command", required=True)
    _leaf(keys_sub, "list", "list the signing keys", settings_of, _keys_list)
    _leaf(keys_sub, "rotate", "sign with a new key; older keys stay published until their tokens expire",
          settings_of, _keys_rotate)


def _leaf(sub, name: str, help_text: str, settings_of: Callable, action: Callable):
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("--store", help="store URL (MEDPORT_STORE)")
    parser.set_defaults(run=lambda args: _run(args, settings_of, action))
    return parser


def _run(args, settings_of: Callable, action: Callable) -> int:
    """Open the store, run the action; a ValueError is a usage error (exit 2)."""
    from .storage import open_store
    settings = settings_of(args)
    args.base_url = settings.base_url          # the AuditEvents of administration name this server
    store = open_store(settings)
    try:
        return action(args, store)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _user_add(args, store) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise ValueError("the passwords do not match")
    user = Users(store).add(args.username, password, args.role, args.fhir_user, args.organization,
                            break_glass=args.break_glass)
    auth_audit.cli_event(store, args.base_url, "user-create", ("user", user.username), auth_audit.user_text(user))
    print(f"user {user.username} added ({user.role}{', ' + user.fhir_user if user.fhir_user else ''})")
    return 0


def _user_list(args, store) -> int:
    rows = [(u.username, u.role, u.fhir_user or "-", u.organization or "-", "yes" if u.disabled else "no")
            for u in Users(store).list()]
    _table(("USERNAME", "ROLE", "FHIR_USER", "ORGANIZATION", "DISABLED"), rows)
    return 0


def _user_disable(args, store) -> int:
    if not Users(store).disable(args.username):
        print(f"error: no user {args.username!r}", file=sys.stderr)
        return 1
    auth_audit.cli_event(store, args.base_url, "user-disable", ("user", args.username), "disabled")
    print(f"user {args.username} disabled")
    return 0


def _client_add(args, store) -> int:
    jwks = None
    if args.jwks:
        try:
            with open(args.jwks, encoding="utf-8") as f:
                jwks = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read a JWKS from {args.jwks}: {e}") from None
    client, secret = Clients(store).add(args.name, args.type, args.redirect_uri, args.scope, jwks=jwks,
                                        jwks_uri=args.jwks_uri, organization=args.organization,
                                        regulator=args.regulator)
    auth_audit.cli_event(store, args.base_url, "client-create", ("client", client.client_id),
                         auth_audit.client_text(client))
    print(f"client_id: {client.client_id}")
    if secret:
        print(f"client_secret: {secret}")
        print("The secret is shown once: only its hash is stored. Keep it now.")
    return 0


def _client_list(args, store) -> int:
    rows = [(c.client_id, c.type, c.name, c.organization or "-", "yes" if c.disabled else "no", " ".join(c.scopes))
            for c in Clients(store).list()]
    _table(("CLIENT_ID", "TYPE", "NAME", "ORGANIZATION", "DISABLED", "SCOPES"), rows)
    return 0


def _client_disable(args, store) -> int:
    if not Clients(store).disable(args.client_id):
        print(f"error: no client {args.client_id!r}", file=sys.stderr)
        return 1
    auth_audit.cli_event(store, args.base_url, "client-disable", ("client", args.client_id), "disabled")
    print(f"client {args.client_id} disabled")
    return 0


def _keys_list(args, store) -> int:
    import datetime
    records = sorted((v for _k, v in store.list_records(KIND)), key=lambda r: r["created"])

    def when(t):
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds") if t else "-"
    _table(("kid", "created", "retires"), [(r["jwk"]["kid"], when(r["created"]), when(r.get("retires")))
                                          for r in records])
    return 0


def _keys_rotate(args, store) -> int:
    key = SigningKeys(store).rotate()
    print(f"new signing key {key.kid}; earlier keys stay in the JWKS until tokens they signed expire")
    return 0


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
