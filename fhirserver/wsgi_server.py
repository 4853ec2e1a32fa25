"""gunicorn as a library: N worker processes with threads, graceful SIGTERM.

On SIGTERM gunicorn stops accepting connections and lets in-flight requests
finish (graceful_timeout) before workers exit, so every write that was
acknowledged has been committed and none is cut off half-way.
"""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


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
        }.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app
        from .validation import warm_up
        app = create_app(self.settings)
        warm_up()   # compile the validators before the first request, not during it
        return app


def run(settings) -> None:
    MedportServer(settings).run()
