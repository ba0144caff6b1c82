"""Schema fuzzing runs on request (`make fuzz`, `make reliability`, or `pytest tests/fuzz`),
not in the quick suite that a bare `pytest` runs."""

from pathlib import Path

import pytest


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_"):
        return config.args_source == pytest.Config.ArgsSource.TESTPATHS
    return None
