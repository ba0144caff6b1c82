"""Fixtures of the MFA tests."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.records.world import Live, live_app


@pytest.fixture
async def live(fresh_database_url: Callable[[], Any]) -> AsyncIterator[Live]:
    """The app on a database of its own, committing for real (races)."""
    async with live_app(await fresh_database_url()) as app:
        yield app
