"""Requests that meet a transient store conflict run again (MongoDB transactions, storage/mongo_units.py).

A transaction that lost a write conflict to a concurrent one, or met a replica-set election, has
written nothing; the whole request is simply dispatched again, a few times, after a short pause.
A request whose body was streamed (a raw Binary upload) cannot be replayed and answers 503 with
Retry-After instead.
"""
from __future__ import annotations

import random
import time

from flask import Flask, g

from ..audit_log import trail as audit_trail
from ..errors import StoreRetry

ATTEMPTS = 4


class RetryingFlask(Flask):
    def dispatch_request(self):
        for attempt in range(ATTEMPTS):
            try:
                return super().dispatch_request()
            except StoreRetry:
                if attempt == ATTEMPTS - 1 or g.get("body_streamed"):
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                audit_trail.restart()       # the attempt wrote nothing: neither did it touch anything
        raise AssertionError("unreachable")
