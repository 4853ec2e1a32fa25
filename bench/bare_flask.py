"""The baseline of bench_read.py: a bare Flask app answering GET /fhir/<type>/<id> with fixed bytes and
headers (those Med-Port returned for that resource), served by the very gunicorn settings of
`medport serve` (fhirserver/wsgi_server.py: same worker class, workers, threads, timeouts).

    python bench/bare_flask.py RESPONSE.json PORT WORKERS THREADS

RESPONSE.json: {"body": "<text>", "headers": [[name, value], ...]} (bench_read.py writes it).
"""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

from flask import Flask, Response
from gunicorn.app.base import BaseApplication

from fhirserver.wsgi_server import MedportServer


def make_app(body: bytes, headers: list[tuple[str, str]]) -> Flask:
    app = Flask("bare")
    content_type = dict((k.lower(), v) for k, v in headers).get("content-type")
    rest = [(k, v) for k, v in headers if k.lower() != "content-type"]

    @app.get("/fhir/<rtype>/<rid>")
    def read(rtype, rid):
        return Response(body, headers=rest, content_type=content_type)

    return app


class BareServer(MedportServer):
    """MedportServer's gunicorn configuration, loading the bare app instead of Med-Port."""

    def __init__(self, settings, app: Flask):
        self.bare_app = app
        super().__init__(settings)

    def load(self):
        return self.bare_app

    def run(self):
        BaseApplication.run(self)       # not MedportServer.run: nothing of Med-Port to preload


def main() -> None:
    path, port, workers, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with open(path) as f:
        spec = json.load(f)
    app = make_app(spec["body"].encode(), [tuple(h) for h in spec["headers"]])
    settings = SimpleNamespace(host="127.0.0.1", port=port, workers=workers, threads=threads, log_level="WARNING",
                               reuse_port="on")     # as Settings().reuse_port: one socket per worker
    sys.argv = sys.argv[:1]     # gunicorn parses the command line too
    BareServer(settings, app).run()


if __name__ == "__main__":
    main()
