"""`medport quality rebuild`: the data quality counters recomputed from the stored resources
(quality/rebuild.py; docs/data-quality.md)."""
from __future__ import annotations

import time
from collections.abc import Callable


def add_parsers(commands, settings_of: Callable) -> None:
    quality = commands.add_parser("quality", help="the data quality counters ($data-quality)")
    sub = quality.add_subparsers(dest="quality_command", required=True)
    p = sub.add_parser("rebuild", help="recompute every record's quality facts and the counters from the store")
    p.add_argument("--store", help="store URL (MEDPORT_STORE)")
    p.add_argument("--base-url", help="base URL the server runs under (MEDPORT_BASE_URL)")
    p.set_defaults(run=lambda args: _rebuild(settings_of(args)))


def _rebuild(settings) -> int:
    from ..context import ServerContext
    from ..storage import open_store
    from .rebuild import rebuild
    ctx = ServerContext(settings, open_store(settings))
    started = time.monotonic()

    def progress(n):
        print(f"\r{n} resources recorded ({n / max(time.monotonic() - started, 1e-9):.0f}/s)", end="", flush=True)
    total = rebuild(ctx, progress=progress)
    print(f"\rdone: the quality facts of {total} resources recorded in {time.monotonic() - started:.1f} s")
    return 0
