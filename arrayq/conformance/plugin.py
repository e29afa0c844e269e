"""pytest plugin (entry point ``pytest11``): adds ``--arrayq-backend`` and
``--arrayq-device`` so that ``pytest --pyargs arrayq.conformance --arrayq-backend NAME``
runs the suite on that backend."""

from typing import Any


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("arrayq")
    group.addoption("--arrayq-backend", default=None, help="backend for arrayq's conformance suite (default: numpy)")
    group.addoption("--arrayq-device", default=None, help="device for arrayq's conformance suite")
