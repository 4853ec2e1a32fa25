"""What one round of the background worker does (`medport worker`, which `medport serve` starts unless
MEDPORT_WORKER=off): bulk exports (bulk/worker.py), then subscription deliveries
(subscriptions/deliver.py). Each shares its work with other workers through leases in the store."""
from __future__ import annotations

import logging
import threading

from .bulk.worker import Worker
from .subscriptions.deliver import Deliveries

log = logging.getLogger(__name__)


class Rounds:
    def __init__(self, ctx):
        self.ctx = ctx
        self.exports = Worker(ctx)
        self.deliveries = Deliveries(ctx)

    def run_once(self) -> None:
        for name, part in (("exports", self.exports), ("deliveries", self.deliveries)):
            try:
                part.run_once()
            except Exception:           # noqa: BLE001 - one part failing does not stop the other
                log.exception("worker round: %s failed", name)

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.run_once()
            stop.wait(self.ctx.settings.worker_poll_s)
