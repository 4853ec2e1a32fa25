"""One settings object. Precedence: CLI flag > MEDPORT_* environment variable > default.

Every field is documented in docs/configuration.md (a test keeps the two in step).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class Settings:
    host: str = _setting("127.0.0.1", "Interface the server listens on.")
    port: int = _setting(8080, "TCP port the server listens on.")
    base_url: str = _setting("", "Public base URL of the FHIR endpoint; default http://HOST:PORT/fhir.")
    store: str = _setting("sqlite:///var/medport.db", "Store URL: sqlite:///path/to/file.db (embedded) or mongodb://...")
    blob_dir: str = _setting("", "Directory for Binary contents; default: a 'blobs' folder beside the SQLite file.")
    workers: int = _setting(2, "Number of server worker processes.")
    threads: int = _setting(4, "Threads per worker process.")
    reuse_port: str = _setting("on", "on: each worker listens on its own socket (SO_REUSEPORT, Linux), so the "
                                     "kernel spreads connections over the workers (connections still queued at a "
                                     "worker that exits or reloads are reset); off: one socket shared by all, "
                                     "where one worker can take every keep-alive connection.")
    max_body_bytes: int = _setting(16 * 1024 * 1024, "Largest accepted JSON request body, in bytes (413 above).")
    max_binary_bytes: int = _setting(100 * 1024 * 1024,
                                     "Largest accepted raw Binary upload, in bytes (413 above).")
    max_bundle_entries: int = _setting(10000, "Most entries a batch or transaction Bundle may have (413 above).")
    max_json_depth: int = _setting(100, "Deepest accepted JSON nesting of a request body (400 above).")
    default_count: int = _setting(50, "Page size of searches and histories when _count is not given.")
    max_count: int = _setting(1000, "Largest page size a client may ask for with _count.")
    default_total: str = _setting("estimate", "Bundle.total when the client gives no _total: accurate, "
                                              "estimate (exact up to 10,000 matches, else left out) or none.")
    search_max_params: int = _setting(50, "Most parameters one search may have, result parameters included "
                                          "(400 above).")
    search_max_values: int = _setting(100, "Most comma-separated values one search parameter may have (400 above).")
    search_max_chain_depth: int = _setting(3, "Most chained and _has links one search parameter may nest "
                                              "(400 above).")
    search_max_chain_targets: int = _setting(10, "Most target types a chain without a :Type modifier may try "
                                                 "(400 above: name the type, e.g. target:Observation.subject).")
    search_max_nodes: int = _setting(500, "Most query-tree nodes one search may expand to, chains, _has, "
                                          "values and composites counted (400 above).")
    bundle_max_search_nodes: int = _setting(2000, "Most query-tree nodes the GET entries of one batch or "
                                                  "transaction Bundle may expand to in all (400 above).")
    search_time_limit_ms: int = _setting(10000, "Time the store may spend on the statements of one search "
                                                "request, in milliseconds (a batch's searches share it); "
                                                "503 with Retry-After past it; 0: no limit.")
    sqlite_synchronous: str = _setting("FULL", "SQLite synchronous pragma: FULL survives power loss, "
                                               "NORMAL only process crashes.")
    sqlite_read_cache_mib: float = _setting(16.0, "MiB of current resource versions and records each server "
                                                  "process keeps after reading them from SQLite, answered again "
                                                  "until the next commit to the store (docs/storage.md); "
                                                  "0: every read asks SQLite.")
    log_level: str = _setting("INFO", "Log level of the access and application logs.")
    access_log_flush_s: float = _setting(1.0, "Seconds the access log may hold its lines before writing them "
                                              "(as nginx's access_log buffer/flush: one write for many lines; "
                                              "also written at 64 KiB, at exit and before a fork; a killed "
                                              "process loses at most this much of it, never an audit event); "
                                              "0: each line at once.")
    auth: str = _setting("on", "SMART on FHIR authorization: on (every FHIR request needs a bearer token) or "
                               "off (no access control; local experiments only, loopback addresses only).")
    access_token_lifetime: int = _setting(3600, "Lifetime of access tokens from user launches, in seconds "
                                                "(at most 3600; backend services tokens live 300).")
    refresh_token_lifetime: int = _setting(90 * 24 * 3600, "Lifetime of offline_access refresh tokens, in seconds.")
    session_lifetime: int = _setting(8 * 3600, "Lifetime of login sessions and of online_access refresh tokens, "
                                               "in seconds.")
    uhid_system: str = _setting("", "Identifier system URI of the Unique Health ID; default BASE_URL/sid/uhid as "
                                    "at the store's first start (then fixed: a store keeps the system its "
                                    "UHIDs were issued under).")
    self_registration: str = _setting("on", "Self-registration at /register and /api/registrations: on, or off "
                                            "(patients are then registered by hospitals through the FHIR API).")
    registration_limit: int = _setting(20, "Registration attempts accepted per client address per hour "
                                           "(429 above); 0: no limit.")
    proxy_hops: int = _setting(0, "Reverse proxies in front of the server whose X-Forwarded-For, -Proto and -Host "
                                  "headers are trusted (client addresses in logs and limits); 0: none.")
    default_custodian: str = _setting("", "Organization/ID that holds what the server writes without a token (the CLI, "
                                          "medport load, authorization off); empty: none (docs/governance.md).")
    sharing_default: str = _setting("opt-in", "What a hospital sees of a patient who has no Consent about it: "
                                              "opt-in (nothing it does not hold) or opt-out (shared unless the "
                                              "patient denies).")
    public_directory: str = _setting("on", "Read and search of the care directory (Organization, Location, "
                                           "HealthcareService, PractitionerRole, Practitioner, Schedule, Slot, "
                                           "ChargeItemDefinition) without a token: on, or off (docs/directory.md).")
    directory_timezone: str = _setting("UTC", "IANA time zone of Locations' opening hours when a Location has no "
                                              "timezone extension (Location?open-now, docs/directory.md).")
    break_glass_minutes: int = _setting(60, "Longest emergency access session (Patient/[id]/$break-glass), in "
                                            "minutes; a shorter duration may be asked (docs/governance.md).")
    appointment_hold_s: int = _setting(600, "Seconds an Appointment/$hold keeps its Slots for the patient; then "
                                            "they count as free again (docs/scheduling.md).")
    audit_integrator: str = _setting("auto", "The audit log's integrator thread in each server process "
                                             "(docs/audit.md): on, off, or auto (on, except under pytest).")
    audit_integration_s: float = _setting(1.0, "Seconds between two integrations of new AuditEvents into the "
                                               "audit log: the log's lag is at most about this.")
    audit_checkpoint_entries: int = _setting(1000, "The audit log signs a checkpoint once it grew by this many "
                                                   "entries...")
    audit_checkpoint_s: int = _setting(60, "... or once this many seconds passed since the last one (if it grew).")
    audit_origin: str = _setting("", "Origin line of the audit log's checkpoints; default: the base URL's host "
                                     "followed by /audit (e.g. fhir.example.org/audit).")
    audit_access: str = _setting("on", "Record a BALP AuditEvent for every FHIR interaction and auth event, durably "
                                       "before the response (docs/audit.md): on, or off (only the sensitive acts "
                                       "are recorded; for benchmarks and experiments).")
    audit_retention_days: int = _setting(0, "Days AuditEvents are kept (docs/audit.md, Retention); 0: keep them "
                                            "forever (the default; HIPAA asks for at least six years).")
    worker: str = _setting("on", "`medport serve` also starts one `medport worker` process for background jobs (bulk "
                                 "export; docs/bulk-export.md): on, or off (run `medport worker` yourself, on any "
                                 "machine sharing the store).")
    worker_poll_s: float = _setting(1.0, "Seconds a worker waits between two looks for queued jobs.")
    export_file_max_bytes: int = _setting(64 * 1024 * 1024, "Bulk export files are split past about this many "
                                                            "bytes (at a page boundary).")
    export_expiry_s: int = _setting(3600, "Seconds a finished export's files are kept (the manifest's Expires).")
    export_poll_s: int = _setting(1, "Retry-After of an export's status answer, in seconds; a client polling "
                                     "more than twice as often gets 429.")
    export_max_jobs: int = _setting(4, "Exports one client may have queued or running at once (429 above).")
    subscription_allow_http_loopback: str = _setting("off", "on: Subscription rest-hook endpoints may be plain "
                                                            "http to a loopback host (tests, local development); "
                                                            "off: https only, never loopback "
                                                            "(docs/subscriptions.md).")
    subscription_max_attempts: int = _setting(5, "Delivery attempts of one notification before the Subscription "
                                                 "goes to status error (backoff doubles from "
                                                 "subscription_retry_base_s).")
    subscription_retry_base_s: float = _setting(1.0, "Seconds before the first retry of a failed notification; "
                                                     "each further retry waits twice as long.")
    subscription_events_keep_s: int = _setting(7 * 24 * 3600, "Seconds a subscription's events are kept for "
                                                               "$events after they fire.")
    subscription_events_keep_max: int = _setting(1000, "Most events kept for $events per subscription (the "
                                                       "oldest go first).")
    profile_validation: str = _setting("reject", "Writes of a resource that claims a profile (meta.profile) or "
                                                 "has a required one are validated against it: reject (422 on "
                                                 "an error), warn (stored; Prefer: return=OperationOutcome "
                                                 "shows the findings) or off (docs/conformance.md).")
    shipped_definitions: str = _setting("served", "The shipped definitions (R4 core, US Core, terminology, R4 "
                                                  "SearchParameters): served (read and searched through the "
                                                  "store, put there on the first read of their type) or "
                                                  "internal (used by validation and terminology only; the store "
                                                  "holds Med-Port's own and installed ones) (docs/conformance.md).")
    required_profiles: str = _setting("", "Profiles every resource of a type must conform to, whatever it "
                                          "claims: Type=canonical,Type=canonical (e.g. "
                                          "Patient=https://medport.health/fhir/StructureDefinition/"
                                          "medport-patient).")

    def __post_init__(self):
        if not self.base_url:
            self.base_url = f"http://{self.host}:{self.port}/fhir"
        self.base_url = self.base_url.rstrip("/")

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        """Build from MEDPORT_* variables, then apply non-None overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_name(f.name))
            if raw not in (None, ""):
                values[f.name] = _coerce(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def env_name(field_name: str) -> str:
    return "MEDPORT_" + field_name.upper()


_NUMBERS = {"int": (int, "an integer"), "float": (float, "a number")}     # field type: (parse, what it must be)


def _coerce(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind not in _NUMBERS:
        return raw
    parse, what = _NUMBERS[kind]
    try:
        return parse(raw)
    except ValueError:
        raise SystemExit(f"{env_name(f.name)} must be {what}, got {raw!r}") from None


def describe() -> list[tuple[str, str, object, str]]:
    """(field, env var, default, help) for every setting: used by docs and `medport config`."""
    return [(f.name, env_name(f.name), f.default, f.metadata["help"]) for f in dataclasses.fields(Settings)]


def config_markdown() -> str:
    """docs/configuration.md, generated from the settings themselves."""
    lines = ["# Configuration", "",
             "Every setting has a default, a `MEDPORT_*` environment variable and, for the",
             "common ones, a `medport serve` flag. Precedence: flag > variable > default.",
             "`medport config` prints the effective values; `medport config --markdown` prints this page.", "",
             "| setting | variable | default | meaning |", "|---|---|---|---|"]
    lines += [f"| {name} | `{env}` | `{default}` | {text} |" for name, env, default, text in describe()]
    lines += ["", "Flags of `medport serve`: `--host`, `--port`, `--base-url`, `--store`, `--workers`.", ""]
    return "\n".join(lines)
