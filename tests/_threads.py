"""Running test clients in threads."""
from __future__ import annotations

import threading


def run_clients(client, count: int = 8, timeout_s: float = 60) -> bool:
    """client(k) for k in range(count), each in its own thread; True when all finished within the timeout."""
    threads = [threading.Thread(target=client, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s)
    return not any(t.is_alive() for t in threads)
