"""Browser tests run with `make e2e` (it installs Chromium and Playwright), not `make test`."""

import os

import pytest

E2E_ENV = "E2E_TESTS"
HERE = os.path.dirname(__file__)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(E2E_ENV) == "1":
        return
    browser = [item for item in items if str(item.path).startswith(HERE + os.sep)]
    if browser:
        config.hook.pytest_deselected(items=browser)
        items[:] = [item for item in items if item not in browser]
