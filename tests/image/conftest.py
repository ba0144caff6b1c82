"""Tests of the built container image, run by `make image-test` (it builds the image with
podman first and names it in HOSPITAL_IMAGE), not by `make test`."""

import os

import pytest

IMAGE_ENV = "IMAGE_TESTS"
HERE = os.path.dirname(__file__)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(IMAGE_ENV) == "1":
        return
    image = [item for item in items if str(item.path).startswith(HERE + os.sep)]
    if image:
        config.hook.pytest_deselected(items=image)
        items[:] = [item for item in items if item not in image]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures the tests recorded (`record_property`): the image's size, its start time."""
    figures = [
        (name, value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if report.nodeid.startswith("tests/image/")
        for name, value in getattr(report, "user_properties", [])
    ]
    if figures:
        terminalreporter.section("container image")
        for name, value in figures:
            terminalreporter.write_line(f"{name}: {value}")
