"""`pytest -m gpu` on the test files that hold GPU tests; one row per test that did not pass.

A skipped GPU test counts against the step: on a CUDA machine every one of them must run.
"""

from __future__ import annotations

import pytest

from scripts.gpu_check.result import StepResult, step_main
from scripts.gpu_check.steps import GPU_TEST_PATHS

RANK = {"passed": 0, "skipped": 1, "failed": 2}


class Outcomes:
    """A pytest plugin keeping each test's worst outcome over its phases (a skip comes at setup)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:
        old = self.outcomes.get(report.nodeid, "passed")
        self.outcomes[report.nodeid] = max(old, report.outcome, key=RANK.__getitem__)


def check() -> StepResult:
    outcomes = Outcomes()
    code = pytest.main(["-q", "-m", "gpu", "-p", "no:cacheprovider", *GPU_TEST_PATHS], plugins=[outcomes])
    counts = {k: list(outcomes.outcomes.values()).count(k) for k in ("passed", "failed", "skipped")}
    rows = [{"test": t, "outcome": o} for t, o in outcomes.outcomes.items() if o != "passed"]
    headline = ", ".join(f"{n} {k}" for k, n in counts.items()) + f" (pytest exit {int(code)})"
    return int(code) == 0 and counts["passed"] > 0 and counts["skipped"] == 0, headline, rows


if __name__ == "__main__":
    step_main(check, __doc__)
