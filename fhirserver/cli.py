"""The `medport` command: `medport serve` runs the production WSGI server (gunicorn)."""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .config import Settings, config_markdown, describe
from .errors import FhirError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medport", description="Med-Port FHIR R4 server")
    parser.add_argument("--version", action="version", version=f"medport {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the FHIR server (gunicorn, several workers)")
    serve.add_argument("--host", help="interface to listen on (MEDPORT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (MEDPORT_PORT, default 8080)")
    serve.add_argument("--base-url", help="public base URL (MEDPORT_BASE_URL, default http://HOST:PORT/fhir)")
    serve.add_argument("--store", help="sqlite:///path/file.db or mongodb://... (MEDPORT_STORE)")
    serve.add_argument("--workers", type=int, help="worker processes (MEDPORT_WORKERS, default 2)")
    serve.add_argument("--auth", choices=("on", "off"),
                       help="SMART authorization (MEDPORT_AUTH, default on); off only on a loopback address")
    serve.add_argument("--demo", action="store_true",
                       help="seed a demo hospital, doctor, patient, accounts and clients; print how to get a token")
    serve.set_defaults(run=_serve)

    load = commands.add_parser("load", help="load Bundles (JSON) and NDJSON files or directories, in order")
    load.add_argument("paths", nargs="+", metavar="PATH")
    load.add_argument("--store", help="store URL (MEDPORT_STORE)")
    load.add_argument("--base-url", help="base URL the server runs under (MEDPORT_BASE_URL)")
    load.add_argument("--no-idempotent", action="store_true",
                      help="do not add ifNoneExist from identifiers to POST entries")
    load.set_defaults(run=_load)

    gc = commands.add_parser("gc-blobs", help="delete Binary content files that no version refers to")
    gc.add_argument("--store", help="store URL (MEDPORT_STORE)")
    gc.add_argument("--min-age", type=float, default=3600, help="only files older than this many seconds")
    gc.set_defaults(run=_gc_blobs)

    reindex = commands.add_parser("reindex", help="recompute the search index of every resource")
    reindex.add_argument("--store", help="store URL (MEDPORT_STORE)")
    reindex.set_defaults(run=_reindex)

    db = commands.add_parser("db", help="the store itself")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    init = db_sub.add_parser("init", help="create the store's collections/tables and indexes (idempotent)")
    init.add_argument("--store", help="store URL (MEDPORT_STORE)")
    init.set_defaults(run=_db_init)

    config = commands.add_parser("config", help="print the effective settings and their environment variables")
    config.add_argument("--markdown", action="store_true", help="print docs/configuration.md instead")
    config.set_defaults(run=_config)

    _audit_parsers(commands)

    from . import cli_accounts, cli_ig, cli_slots, cli_uhid, cli_worker, outbox
    from .quality import cli as cli_quality
    cli_accounts.add_parsers(commands, _settings)
    cli_ig.add_parsers(commands, _settings)
    cli_slots.add_parsers(commands, _settings)
    cli_worker.add_parsers(commands, _settings)
    cli_uhid.add_parsers(commands, _settings)
    outbox.add_parsers(commands, _settings)
    cli_quality.add_parsers(commands, _settings)

    args = parser.parse_args(argv)
    return args.run(args) or 0


def _settings(args) -> Settings:
    return Settings.from_env(host=getattr(args, "host", None), port=getattr(args, "port", None),
                             base_url=getattr(args, "base_url", None), store=getattr(args, "store", None),
                             workers=getattr(args, "workers", None), auth=getattr(args, "auth", None))


def _serve(args) -> int:
    from .storage import open_store
    from .wsgi_server import run
    settings = _settings(args)
    for name in ("auth", "reuse_port"):
        if getattr(settings, name) not in ("on", "off"):
            print(f"error: MEDPORT_{name.upper()} must be on or off, not {getattr(settings, name)!r}",
                  file=sys.stderr)
            return 2
    if settings.auth == "off":
        if not _is_loopback(settings.host):
            print(f"error: --auth off serves every record to anyone; it is refused on {settings.host}. "
                  "Use a loopback address (127.0.0.1, ::1) for local experiments.", file=sys.stderr)
            return 2
        print("WARNING: AUTHORIZATION IS OFF. Every request may read and change every record.\n"
              "WARNING: for local experiments only; never with real patient data.", file=sys.stderr)
    if settings.store.startswith("mongomock://"):
        print("error: mongomock:// is the tests' in-memory store; every worker would hold its own. "
              "Use mongodb://host/dbname.", file=sys.stderr)
        return 2
    from .wsgi_server import balanced, refuse_taken_port
    if balanced(settings):          # before anything is written or started
        refuse_taken_port(settings.host, settings.port)
    try:
        store = open_store(settings)   # fail fast (bad URL, unwritable path, no server) before forking workers
        from .context import initialize
        initialize(settings, store)    # the init step, once: the workers only read
    except FhirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.demo:
        _seed_demo(settings, store)
    store.close()
    from . import cli_worker
    worker = cli_worker.spawn(settings) if settings.worker == "on" else None
    try:
        run(settings)
    finally:
        cli_worker.stop(worker)
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seed_demo(settings, store) -> None:
    import os

    from . import demo
    from .context import ServerContext
    folder = os.path.dirname(store.path) if getattr(store, "path", None) else "."
    creds = demo.seed(ServerContext(settings, store), folder)
    print(demo.instructions(settings.base_url, creds, os.path.join(folder, "demo-credentials.json")), flush=True)


def _load(args) -> int:
    from .context import ServerContext
    from .loader import load
    from .storage import open_store
    from .validation import warm_up
    settings = _settings(args)
    warm_up()
    store = open_store(settings)
    report = load(ServerContext(settings, store), args.paths, idempotent=not args.no_idempotent)
    store.analyze()
    rate = report.resources / report.seconds if report.seconds else 0
    print(f"loaded {report.files} file(s), {report.resources} resources in {report.seconds:.1f} s ({rate:.0f}/s)")
    for path, why in report.failures:
        print(f"FAILED {path}: {why}", file=sys.stderr)
    return 1 if report.failures else 0


def _gc_blobs(args) -> int:
    """A process killed between an upload and its commit leaves an unreferenced file; this removes them.
    The age threshold keeps uploads whose transaction has not committed yet."""
    from .storage import open_store
    store = open_store(_settings(args))
    candidates = list(store.blobs.keys(args.min_age))
    from .bulk.jobs import referenced_blobs as export_files
    referenced = store.referenced_blobs() | export_files(store)
    orphans = [k for k in candidates if k not in referenced]
    for key in orphans:
        store.blobs.delete(key)
    print(f"{len(orphans)} unreferenced blob(s) deleted, {len(candidates) - len(orphans)} kept")
    return 0


def _reindex(args) -> int:
    import time

    from . import jsonio
    from .search.extract import extract
    from .storage import open_store
    settings = _settings(args)
    store = open_store(settings)
    started = time.monotonic()

    def progress(n):
        print(f"\r{n} resources reindexed ({n / max(time.monotonic() - started, 1e-9):.0f}/s)", end="", flush=True)
    total = store.reindex(lambda _type, body: extract(jsonio.loads(body), settings.base_url), progress=progress)
    store.analyze()
    print(f"\rdone: {total} resources reindexed in {time.monotonic() - started:.1f} s")
    return 0


def _db_init(args) -> int:
    from .context import initialize
    from .storage import open_store
    settings = _settings(args)
    store = open_store(settings)
    initialize(settings, store)     # idempotent: indexes, collections, the app's own records
    for line in store.describe():
        print(line)
    return 0


def _config(args) -> int:
    if args.markdown:
        print(config_markdown(), end="")
        return 0
    settings = _settings(args)
    for name, env, _default, help_text in describe():
        print(f"{env:28} {getattr(settings, name)!s:40} {help_text}")
    return 0


def _audit_parsers(commands) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident audit log (docs/audit.md)")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    p = sub.add_parser("checkpoint", help="integrate pending AuditEvents and print the latest signed checkpoint")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=_audit_checkpoint)
    p = sub.add_parser("verify", help="recompute the audit log from the stored AuditEvents; exit 1 at the first "
                                      "bad index")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--checkpoint", metavar="FILE", help="a checkpoint kept outside: the log must extend it")
    p.add_argument("--from-export", metavar="OUT", help="verify an export (medport audit export) against "
                                                        "--checkpoint instead of the store")
    p.add_argument("--proof", metavar="FILE", help="the export's proof (default OUT.proof)")
    p.add_argument("--public-key", metavar="FILE", help="verifier keys (medport audit public-key) to check "
                                                        "the checkpoint's signature; default: the store's keys")
    p.add_argument("--from-url", metavar="URL", help="verify a running server's log over HTTP ([base] URL, e.g. "
                                                     "https://fhir.example.org/fhir) up to its latest checkpoint; "
                                                     "needs --public-key (or --trust-server-key)")
    p.add_argument("--token", help="with --from-url: a regulator's or administrator's access token "
                                   "(default MEDPORT_TOKEN)")
    p.add_argument("--trust-server-key", action="store_true",
                   help="with --from-url and no --public-key: verify without checking the checkpoint's signature")
    p.set_defaults(run=_audit_verify)
    p = sub.add_parser("export", help="integrate, then write the log's AuditEvents (NDJSON, index order), its "
                                      "proof and the signed checkpoint that covers them")
    p.add_argument("out", metavar="OUT.ndjson")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--checkpoint-out", metavar="FILE", help="where to write the checkpoint (default OUT.checkpoint)")
    p.add_argument("--start", type=int, help="first index (default 0, or the first not pruned)")
    p.add_argument("--end", type=int, help="index after the last (default the checkpoint's size)")
    p.set_defaults(run=_audit_export)
    p = sub.add_parser("public-key", help="print the log's public keys as signed-note verifier keys")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=_audit_public_key)
    p = sub.add_parser("prune", help="remove AuditEvents older than MEDPORT_AUDIT_RETENTION_DAYS that a signed "
                                     "checkpoint covers (the log keeps their leaf hashes)")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=_audit_prune)
    p = sub.add_parser("rotate-key", help="make a new Ed25519 key sign the audit log's checkpoints")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=_audit_rotate_key)
    p = sub.add_parser("integrate", help="integrate pending AuditEvents into the audit log now")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.set_defaults(run=_audit_integrate)


def _audit_checkpoint(args) -> int:
    from .audit_log import log as audit_log
    from .storage import open_store
    settings = _settings(args)
    store = open_store(settings)
    audit_log.integrate(store, settings)
    text = audit_log.latest_checkpoint(store)
    if text is None:
        text = audit_log.Integrator(store, settings).sign(*audit_log.tail(store), None)
    print(text, end="")
    return 0


def _audit_verify(args) -> int:
    from .audit_log.verify import verify
    from .storage import open_store
    external = None
    if args.checkpoint:
        with open(args.checkpoint, encoding="utf-8") as f:
            external = f.read()
    if args.from_url:
        from .audit_log.remote import from_url
        report = from_url(args, external)
        if isinstance(report, int):
            return report
    elif args.from_export:
        from .audit_log.export import verify_export
        if external is None:
            print("error: --from-export needs --checkpoint FILE (written by medport audit export)", file=sys.stderr)
            return 2
        keys = None
        if args.public_key:
            with open(args.public_key, encoding="utf-8") as f:
                keys = [line for line in f.read().splitlines() if line.strip()]
        store = None if keys is not None else open_store(_settings(args))
        report = verify_export(args.from_export, external, keys, store, args.proof)
    else:
        report = verify(open_store(_settings(args)), external)
    rate = report.size / report.seconds if report.seconds else 0
    if report.ok:
        pruned = f" ({report.pruned} pruned by retention: leaf hashes only)" if report.pruned else ""
        print(f"OK: {report.size} entries verified{pruned} in {report.seconds:.1f} s ({rate:.0f} entries/s)"
              + getattr(report, "note", ""))
        return 0
    first = report.first
    print(f"FAILED at index {first.index}: {first.kind}: {first.detail}")
    for p in sorted(report.problems, key=lambda p: p.index)[1:10]:
        print(f"  also at index {p.index}: {p.kind}: {p.detail}", file=sys.stderr)
    return 1


def _audit_export(args) -> int:
    from .audit_log.export import ExportError, export
    from .storage import open_store
    settings = _settings(args)
    checkpoint_out = args.checkpoint_out or args.out + ".checkpoint"
    try:
        start, end, size = export(open_store(settings), settings, args.out, checkpoint_out, args.start, args.end)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    print(f"exported entries {start}..{end - 1} of {size} to {args.out} (proof {args.out}.proof, "
          f"checkpoint {checkpoint_out})")
    return 0


def _audit_public_key(args) -> int:
    from .audit_log.export import verifier_keys
    from .audit_log.keys import AuditKeys
    from .storage import open_store
    settings = _settings(args)
    store = open_store(settings)
    AuditKeys(store).active()           # created on first use, as the first checkpoint would
    for line in verifier_keys(store, settings):
        print(line)
    return 0


def _audit_prune(args) -> int:
    from .audit_log.retention import RetentionError, prune
    from .storage import open_store
    settings = _settings(args)
    try:
        n, below = prune(open_store(settings), settings)
    except RetentionError as e:
        print(f"error: {e}" if e.code == 2 else str(e), file=sys.stderr if e.code == 2 else sys.stdout)
        return e.code
    print(f"{n} AuditEvents pruned; entries below index {below} keep only their leaf hashes")
    return 0


def _audit_rotate_key(args) -> int:
    from .audit_log.keys import AuditKeys
    from .storage import open_store
    _key, kid = AuditKeys(open_store(_settings(args))).rotate()
    print(f"audit log signing key {kid} is now active; the older keys stay to verify older checkpoints")
    return 0


def _audit_integrate(args) -> int:
    from .audit_log import log as audit_log
    from .storage import open_store
    settings = _settings(args)
    n = audit_log.integrate(open_store(settings), settings)
    print(f"{n} entries appended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
