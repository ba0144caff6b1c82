"""The FHIR facade's tests run on the authorization matrix's small hospital."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.records.world import World, build_world


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await build_world(db)
