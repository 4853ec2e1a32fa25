from __future__ import annotations

import pytest

from ._harness import make_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One seeded server per test module (made once: the fuzzers send thousands of requests)."""
    return make_server(tmp_path_factory.mktemp("fuzz"))
