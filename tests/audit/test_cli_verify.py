"""`hospital-api audit-verify`, run as an operator would, on a database committed for real."""

import asyncio
import os
import subprocess
import sys
from typing import Any

from sqlalchemy import text

from app.core.db import create_engine, create_sessionmaker
from tests.audit.helpers import event_ids, lift_append_only_guard, write_events
from tests.conftest import ROOT, make_settings


def audit_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "audit-verify"],
        env={**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


async def test_cli_reports_ok_then_the_first_bad_event(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    engine = create_engine(make_settings(url))
    try:
        async with create_sessionmaker(engine)() as session:
            await write_events(session, 4, per_transaction=2)
            ids = await event_ids(session)

        intact = await asyncio.to_thread(audit_verify, url)
        assert intact.returncode == 0, intact.stderr
        assert "ok: 4 events" in intact.stdout

        async with create_sessionmaker(engine)() as session:
            await lift_append_only_guard(session)
            await session.execute(
                text("UPDATE audit_events SET ip = '10.0.0.1' WHERE id = :id"), {"id": ids[1]}
            )
            await session.commit()
        broken = await asyncio.to_thread(audit_verify, url)
        assert broken.returncode == 1
        assert f"BROKEN at event {ids[1]}" in broken.stderr
    finally:
        await engine.dispose()


async def test_cli_names_an_event_whose_patients_were_altered(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    engine = create_engine(make_settings(url))
    try:
        async with create_sessionmaker(engine)() as session:
            await write_events(session, 4, per_transaction=2, patients=[8, 9])
            ids = await event_ids(session)
            await lift_append_only_guard(session)
            await session.execute(
                text("UPDATE audit_events SET patient_ids = '[8]' WHERE id = :id"), {"id": ids[2]}
            )
            await session.commit()
        broken = await asyncio.to_thread(audit_verify, url)
        assert broken.returncode == 1
        assert f"BROKEN at event {ids[2]}" in broken.stderr
    finally:
        await engine.dispose()
