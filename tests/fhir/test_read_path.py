"""The FHIR reads take the REST reads' path: one statement (the token checked in it, the
policy narrowing it) and, when patient data is shown, one append of its audit events;
`_total` adds its count, and nothing else adds a statement (an `_include` is joined)."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from tests.conftest import is_postgres
from tests.fhir.helpers import BASE
from tests.records.world import World
from tests.statements import is_append, recording

# (caller, path, statements read, whether its answer shows patient data: audited)
READS = [
    ("doctor_own", "/Condition/{record}", 1, True),
    ("patient_owner", "/Condition/{record}/_history", 1, True),
    ("doctor_own", "/Condition/{record}/_history/1", 1, True),
    ("doctor_own", "/Condition?patient={patient}&_count=50", 1, True),
    ("doctor_own", "/Condition?_count=50", 1, True),
    (
        "doctor_own",
        "/Condition?subject=Patient/{patient}&recorded-date=ge2000&_id={record}",
        1,
        True,
    ),
    ("doctor_own", "/Condition?_include=Condition:subject", 1, True),
    ("doctor_own", "/Condition?patient={patient}&_total=accurate", 2, True),
    ("doctor_own", "/Patient/{patient}", 1, True),
    # No one matches: no patient data shown, nothing appended.
    ("patient_owner", "/Patient?name=name&gender=female,male,other,unknown&_count=10", 1, False),
    ("admin", "/Patient?birthdate=lt3000&identifier=x,y", 1, False),
    ("admin", "/Patient", 1, True),
    ("admin", "/Practitioner/{doctor}", 1, False),
    ("doctor_own", "/Practitioner?name:contains=a&identifier=x", 1, False),
    ("doctor_own", "/PractitionerRole?organization={department}", 1, False),
    ("patient_owner", "/Organization/{department}", 1, False),
    ("patient_owner", "/Organization?name=department&_total=accurate", 2, False),
]


@pytest.mark.parametrize(("caller", "path", "expected", "audited"), READS)
async def test_each_fhir_read_is_its_statement_and_one_append(
    client: httpx.AsyncClient,
    db: AsyncSession,
    engine: AsyncEngine,
    sessionmaker: Any,
    settings: Settings,
    world: World,
    caller: str,
    path: str,
    expected: int,
    audited: bool,
) -> None:
    headers = await world.headers(db, settings, caller)
    url = BASE + path.format(
        record=world.record.id,
        patient=world.users["patient_owner"].id,
        doctor=world.users["doctor_own"].id,
        department=world.department.id,
    )
    async with recording(engine, sessionmaker) as statements:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    appends = [statement for statement in statements if is_append(statement)]
    reads = [statement for statement in statements if not is_append(statement)]
    assert len(reads) == expected, reads
    assert len(appends) == ((1 if is_postgres() else 3) if audited else 0), appends
