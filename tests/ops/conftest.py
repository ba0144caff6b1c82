"""Slow operations tests (real installs, real servers) run with `make ops-test`, not `make test`."""

import os

import pytest

SLOW_ENV = "OPS_SLOW_TESTS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"slow_ops: installs or starts real processes; runs when {SLOW_ENV}=1"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SLOW_ENV) == "1":
        return
    slow = [item for item in items if item.get_closest_marker("slow_ops")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow_ops") is None]
