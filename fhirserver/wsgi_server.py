"""gunicorn as a library: N worker processes with threads, graceful SIGTERM.

On SIGTERM gunicorn stops accepting connections and lets in-flight requests
finish (graceful_timeout) before workers exit, so every write that was
acknowledged has been committed and none is cut off half-way.

Memory: the master preloads what is big, read-only and fork-safe (the modules, the compiled
validators, the R4 definitions and the search-parameter registry) before gunicorn forks, so the
workers share it copy-on-write instead of each building its own (bench/bench_memory.py). The Flask
app, the store and its connections and threads are still made in each worker (`load`): none of
them may cross a fork.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import gc
import logging
import socket

from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


class MedportServer(BaseApplication):
    def __init__(self, settings):
        self.settings = settings
        super().__init__()

    def load_config(self):
        s = self.settings
        for key, value in {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": s.threads,
            "graceful_timeout": 30,
            "timeout": 120,
            "accesslog": None,          # fhirserver.accesslog writes one JSON line per request
            "errorlog": "-",
            "loglevel": s.log_level.lower(),
            "limit_request_line": 8190,
            "reuse_port": balanced(s),
        }.items():
            self.cfg.set(key, value)

    def run(self):
        # The simplest correct place: the master runs this before the Arbiter exists, so every
        # worker (the first ones and any gunicorn respawns later) is forked from a master that
        # already holds the preloaded objects. gunicorn's preload_app would also create the
        # Flask app, and with it the store, in the master; that is exactly what must not happen.
        preload()
        super().run()

    def load(self):
        # in each worker, after the fork
        from . import create_app
        from .validation import warm_up
        app = create_app(self.settings)
        warm_up()   # a no-op after preload(); otherwise compile the validators before the first request
        return app


def balanced(settings) -> bool:
    """Whether each worker gets a listening socket of its own (gunicorn reuse_port): the kernel then
    hashes new connections over the workers. With one shared socket, whichever worker wakes first
    accepts, and a few keep-alive clients (a hospital's integration engine, a load balancer's pool) can
    all land on one worker while the other idles. Not for port 0: each worker would get its own port."""
    return getattr(settings, "reuse_port", "off") == "on" and hasattr(socket, "SO_REUSEPORT") and settings.port != 0


def refuse_taken_port(host: str, port: int) -> None:
    """SO_REUSEPORT lets a second server of the same user bind a port a running one holds, and the two
    would silently split the traffic: check with a plain bind first, as a shared socket would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as gunicorn binds: TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SystemExit(f"{host}:{port} is already in use (another server?)") from e
            raise


def preload() -> None:
    """Build, in the gunicorn master before it forks, everything big the workers only read:

    * the modules a worker imports (code objects, Flask, the FHIRPath engine);
    * the R4 schema model and the fastjsonschema checks compiled from it (validation.warm_up);
    * the JSON definitions under profiles/ and what is derived from them: resource types, the
      search-parameter registry with every parameter's compiled FHIRPath expression, the
      compartment, the _summary elements, the operations;
    * the shipped conformance catalogue (profiles, terminology) and the UCUM unit registry, which
      the first write of each worker otherwise paid for (issue 16: 12% of a short ingest run).

    No store, connection, thread or app is made here: only immutable module-level caches.
    Then the garbage left by compiling is handed back to the system (malloc_trim), so the
    master does not keep it and the workers do not inherit it, and gc.freeze() moves every
    surviving object into the permanent generation: the workers' collector never visits (and so
    never writes to) these objects, which would copy their pages into each worker.
    """
    from . import app, capability, definitions, operations  # noqa: F401 - imported to be shared
    from .search import compartment, fhirpath, registry
    from .storage import sqlite  # noqa: F401 - the default store's modules
    from .validation import warm_up
    warm_up()
    for name in ("fhir.schema.json", "search-parameters.json", "summary-elements.json",
                 "required-elements.json", "search-unsupported.json", registry.MEDPORT_PARAMETERS):
        definitions.load_json(name)
    types = sorted(definitions.resource_types())
    for rtype in types:
        for param in registry.indexed_params(rtype):
            fhirpath.compile_expression(param.expression, rtype)
    for name in compartment.COMPARTMENTS:
        compartment.members(name)
    fhirpath._choice_names()
    capability._rev_includes()
    operations.registry()
    import fhirpathpy.models  # noqa: F401 - the FHIRPath engine the patch interaction and a few parameters use

    from .conformance import catalogue
    catalogue.code_systems()    # the shipped definitions and terminology (~0.3 s in each worker otherwise)
    from .search import ucum
    ucum.canonical("mg")        # UCUM's unit registry (pint: ~0.4 s in each worker, at its first quantity)
    gc.collect()
    _malloc_trim()
    gc.freeze()


def _malloc_trim() -> None:
    """Return glibc's free heap pages to the system (compiling the validators peaks near 300 MiB,
    of which about 6 MiB stays in use). Elsewhere (musl, macOS) there is nothing to call."""
    path = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(path).malloc_trim
    except (OSError, AttributeError, TypeError):
        log.debug("malloc_trim is not available")
        return
    trim(0)


def run(settings) -> None:
    MedportServer(settings).run()
