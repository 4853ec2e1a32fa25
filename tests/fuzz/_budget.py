"""How hard the fuzz tests try, from the environment.

    MEDPORT_FUZZ_EXAMPLES   examples per fuzz test (default 25: the short budget `make test` and CI run)
    MEDPORT_FUZZ_SEED       "ci" (default): derandomized, the same examples every run, so CI is
                            deterministic; "random": fresh examples each run (`make fuzz`);
                            an integer: that seed, to replay a `make fuzz` run
    MEDPORT_FUZZ_TIMEOUT    seconds a single request may take before it counts as a hang (default 10)

`make fuzz` runs the same tests with MEDPORT_FUZZ_EXAMPLES=1200 MEDPORT_FUZZ_SEED=random (estimated ten
minutes on two cores).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, seed, settings

EXAMPLES = max(1, int(os.environ.get("MEDPORT_FUZZ_EXAMPLES", "25")))
SEED = os.environ.get("MEDPORT_FUZZ_SEED", "ci").strip().lower() or "ci"
TIMEOUT_S = float(os.environ.get("MEDPORT_FUZZ_TIMEOUT", "10"))
DERANDOMIZE = SEED == "ci"


def fuzz_settings(scale: float = 1.0) -> settings:
    """Hypothesis settings of one fuzz test: `scale` times the example budget."""
    return settings(
        max_examples=max(1, int(EXAMPLES * scale)),
        derandomize=DERANDOMIZE,
        deadline=None,                  # the harness bounds each request itself (a hang is a failure)
        database=None,                  # no .hypothesis/ replay between runs: CI sees exactly its examples
        print_blob=True,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
    )


def fuzz(scale: float = 1.0):
    """Decorator: the budget's settings, and its seed when one is given (MEDPORT_FUZZ_SEED=1234)."""
    def wrap(test):
        test = fuzz_settings(scale)(test)
        if SEED.isdigit():
            test = seed(int(SEED))(test)
        return test
    return wrap
