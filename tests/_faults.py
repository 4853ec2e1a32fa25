"""Fault injection for tests: a function that fails once, then behaves."""
from __future__ import annotations


def failing_once(real, error: Exception):
    """real, except that its first call raises error; .calls counts the calls."""
    def wrapper(*args, **kw):
        wrapper.calls += 1
        if wrapper.calls == 1:
            raise error
        return real(*args, **kw)
    wrapper.calls = 0
    return wrapper
