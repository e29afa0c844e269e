"""The conformance suite as pytest tests: one test per case, plus the context check.
Collected by ``pytest --pyargs arrayq.conformance --arrayq-backend NAME``."""

from typing import Any

import pytest

from arrayq.conformance.cases import Case, all_cases
from arrayq.conformance.runner import context_results, run_case

CASES = all_cases()


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    import arrayq

    name = request.config.getoption("--arrayq-backend", default=None) or "numpy"
    return arrayq.get_backend(name), request.config.getoption("--arrayq-device", default=None)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, target: tuple[Any, Any]) -> None:
    backend, device = target
    result = run_case(case, backend, device)
    if result.status == "skip":
        pytest.skip(result.message)
    assert result.status == "pass", result.message


def test_default_backend_context(target: tuple[Any, Any]) -> None:
    for result in context_results(*target):
        assert result.status == "pass", result.message
