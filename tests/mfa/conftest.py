"""Fixtures of the MFA tests."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.live import Live, start


@pytest.fixture
async def live(fresh_database_url: Callable[[], Any]) -> AsyncIterator[Live]:
    """The app in this process, committing for real (races): the frozen clock reaches it."""
    async with await start(await fresh_database_url(), in_process=True) as app:
        yield app
