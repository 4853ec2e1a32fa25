"""`medport worker`: the background worker process (bulk exports, subscription deliveries:
fhirserver/worker_rounds.py, and the audit log's primary integrator: audit_log/log.py), and the one
`medport serve` starts beside its web workers unless MEDPORT_WORKER=off."""
from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Callable


def add_parsers(commands, settings_of: Callable) -> None:
    p = commands.add_parser("worker", help="run background jobs (bulk exports, subscription deliveries, "
                                                 "the audit log's primary integrator) for the store, until stopped")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--base-url", help="public base URL of the FHIR endpoint (MEDPORT_BASE_URL)")
    p.add_argument("--once", action="store_true", help="one round, then exit")
    p.set_defaults(run=lambda args: run(settings_of(args), once=args.once))


def run(settings, once: bool = False) -> int:
    from .context import ServerContext
    from .storage import open_store
    from .worker_rounds import Rounds
    ctx = ServerContext(settings, open_store(settings))
    worker = Rounds(ctx)
    if once:
        worker.run_once()
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))    # unwinds: a half-written file is removed
    from .audit_log import log as audit_log
    if audit_log.wanted(settings):
        audit_log.start_thread(ctx.store, settings, role="primary")     # the web workers stand by for it
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


def spawn(settings) -> subprocess.Popen:
    """A `medport worker` child of `medport serve`, with the same store and base URL; it dies with it."""
    cmd = [sys.executable, "-c", "import sys; from fhirserver.cli import main; sys.exit(main())", "worker",
           "--store", settings.store, "--base-url", settings.base_url]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """Linux prctl(PR_SET_PDEATHSIG, SIGTERM): no orphaned worker if the server is killed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
