"""The migrations build exactly the models' schema, and go down and up again cleanly."""

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.audit.chain import GENESIS_HASH, canonical_time, link
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.verify import verify_chain
from app.core.db import utcnow
from app.models import Base, include_in_autogenerate
from tests.conftest import alembic_config


async def _schema_differences(url: str) -> list[Any]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:

        def compare(sync_connection: Any) -> list[Any]:
            context = MigrationContext.configure(
                sync_connection,
                opts={
                    "compare_server_default": True,
                    "include_object": include_in_autogenerate,
                },
            )
            return list(compare_metadata(context, Base.metadata))

        differences = await connection.run_sync(compare)
    await engine.dispose()
    return differences


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


async def test_migrations_match_the_models(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    assert await _schema_differences(url) == []


async def test_downgrade_to_base_and_upgrade_again(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    config = alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _tables(url) <= {"alembic_version"}
    await asyncio.to_thread(command.upgrade, config, "head")
    assert set(Base.metadata.tables) <= await _tables(url)
    assert await _schema_differences(url) == []


async def _at_revision(fresh_database_url: Any, revision: str) -> tuple[str, Any, AsyncEngine]:
    """A fresh database migrated down to `revision`, its Alembic config and an engine on it."""
    url = await fresh_database_url()
    config = alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, revision)
    return url, config, create_async_engine(url)


async def test_full_name_keys_are_filled_in_for_existing_users(fresh_database_url: Any) -> None:
    url, config, engine = await _at_revision(fresh_database_url, "0002")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (username, username_key, email, email_key, full_name, "
                "password_hash, role, is_active, tokens_valid_after, created_at) VALUES "
                "('gross', 'gross', 'g@example.org', 'g@example.org', 'Anna GROSSE-Straße', "
                "'x', 'patient', true, :now, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    await asyncio.to_thread(command.upgrade, config, "head")
    async with engine.connect() as connection:
        key = await connection.scalar(text("SELECT full_name_key FROM users"))
    await engine.dispose()
    assert key == "anna grosse-strasse"


# The chained content before revision 0004 added patient_ids.
CONTENT_BEFORE_0004 = (
    "at", "actor_id", "action", "resource_type", "resource_id", "outcome", "ip", "request_id",
    "emergency_grant_id", "patient_id", "department_id",
)  # fmt: skip


async def _chain_as_0002_wrote_it(url: str, count: int) -> None:
    engine = create_async_engine(url)
    previous = GENESIS_HASH
    async with AsyncSession(engine) as session:
        for n in range(count):
            event = {
                "at": utcnow() + timedelta(seconds=n), "actor_id": 7, "action": "record.list",
                "resource_type": "record", "resource_id": None, "outcome": "allowed",
                "ip": "203.0.113.7", "request_id": f"r{n}", "emergency_grant_id": None,
                "patient_id": 40 + n, "department_id": 2,
            }  # fmt: skip
            content = [canonical_time(event["at"]), *(event[f] for f in CONTENT_BEFORE_0004[1:])]
            previous = link(previous, hashlib.sha256(orjson.dumps(content)).hexdigest())
            event_id = await session.scalar(
                insert(AuditEvent).values(**event, hash=previous).returning(AuditEvent.id)
            )
        await session.execute(
            update(AuditChainHead).values(last_event_id=event_id, last_hash=previous)
        )
        await session.commit()
    await engine.dispose()


async def test_a_chain_written_before_patient_ids_still_verifies(fresh_database_url: Any) -> None:
    url = await fresh_database_url()
    config = alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    await _chain_as_0002_wrote_it(url, 3)
    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_async_engine(url)
    async with AsyncSession(engine) as session:
        report = await verify_chain(session)
    await engine.dispose()
    assert (report.ok, report.events) == (True, 3)


async def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        rows = [tuple(row) for row in await connection.execute(text(query))]
    await engine.dispose()
    return rows


async def test_patient_links_move_to_rows_of_events_and_back(fresh_database_url: Any) -> None:
    url, config, engine = await _at_revision(fresh_database_url, "0004")
    async with engine.begin() as connection:
        ids = []
        for patients in ("[3,5]", "[4,5]"):
            ids.append(
                await connection.scalar(
                    text(
                        "INSERT INTO audit_events (at, actor_id, action, resource_type, "
                        "outcome, patient_ids, hash) VALUES (:at, 7, 'record.list', 'record', "
                        "'allowed', :patients, :hash) RETURNING id"
                    ),
                    {"at": utcnow(), "patients": patients, "hash": "0" * 64},
                )
            )
        first, second = ids
        await connection.execute(
            text(
                "INSERT INTO audit_event_patients (patient_id, event_id) "
                f"VALUES (3, {first}), (5, {first}), (4, {second}), (5, {second})"
            )
        )
    await engine.dispose()

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _rows(
        url,
        "SELECT patient_id, first_event_id, event_ids FROM audit_patient_links ORDER BY 1, 2",
    ) == [
        (3, first, f"[{first}]"),
        (4, second, f"[{second}]"),
        (5, first, f"[{first}]"),
        (5, second, f"[{second}]"),
    ]
    assert await _rows(url, "SELECT linked_event_id FROM audit_link_state") == [(second,)]

    await asyncio.to_thread(command.downgrade, config, "0004")
    assert await _rows(
        url, "SELECT patient_id, event_id FROM audit_event_patients ORDER BY 1, 2"
    ) == [(3, first), (4, second), (5, first), (5, second)]


async def test_unique_keys_are_normalised_and_collisions_kept_apart(
    fresh_database_url: Any,
) -> None:
    """0006 re-keys existing rows: the oldest of rows sharing a key keeps it, each later one
    gets a placeholder key that no name can have; the names stay as they were stored."""
    url, config, engine = await _at_revision(fresh_database_url, "0005")
    now = datetime.now(UTC)
    users = [  # username, email, full name; keys as 0005 wrote them (casefold only)
        ("alice", "alice@example.org", "Alice Smith"),
        ("bob", "ａlice@example.org", "  Bob Ｂrown "),
        ("carol", "carol@example.org", "Carol"),
    ]
    async with engine.begin() as connection:
        for username, email, full_name in users:
            await connection.execute(
                text(
                    "INSERT INTO users (username, username_key, email, email_key, full_name, "
                    "full_name_key, password_hash, role, is_active, tokens_valid_after, "
                    "created_at) VALUES (:u, :uk, :e, :ek, :f, :fk, 'x', 'patient', true, "
                    ":now, :now)"
                ),
                {
                    "u": username,
                    "uk": username.casefold(),
                    "e": email,
                    "ek": email.casefold(),
                    "f": full_name,
                    "fk": full_name.casefold(),
                    "now": now,
                },  # fmt: skip
            )
        for name in ("Cardiology", "Cardiology ", "Ｏncology", "CARDIOLOGY\u3000"):
            await connection.execute(
                text("INSERT INTO departments (name, name_key, created_at) VALUES (:n, :k, :t)"),
                {"n": name, "k": name.casefold(), "t": now},
            )
        for key, failures in (("ｄave", 3), ("dave", 2), ("erin ", 1)):
            await connection.execute(
                text(
                    "INSERT INTO login_failures (username_key, failures, window_started_at) "
                    "VALUES (:k, :f, :t)"
                ),
                {"k": key, "f": failures, "t": now},
            )
    await engine.dispose()

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _rows(url, "SELECT username, email, email_key FROM users ORDER BY id") == [
        ("alice", "alice@example.org", "alice@example.org"),
        ("bob", "ａlice@example.org", " DUPLICATE 2 OF 1"),
        ("carol", "carol@example.org", "carol@example.org"),
    ]
    assert await _rows(url, "SELECT full_name, full_name_key FROM users ORDER BY id") == [
        ("Alice Smith", "alice smith"),
        ("  Bob Ｂrown ", "bob brown"),
        ("Carol", "carol"),
    ]
    assert await _rows(url, "SELECT id, name, name_key FROM departments ORDER BY id") == [
        (1, "Cardiology", "cardiology"),
        (2, "Cardiology ", " DUPLICATE 2 OF 1"),
        (3, "Ｏncology", "oncology"),
        (4, "CARDIOLOGY\u3000", " DUPLICATE 4 OF 1"),
    ]
    assert await _rows(
        url, "SELECT username_key, failures FROM login_failures ORDER BY username_key"
    ) == [("dave", 3), ("erin", 1)]

    await asyncio.to_thread(command.downgrade, config, "0005")
    assert await _rows(url, "SELECT email_key FROM users ORDER BY id") == [
        ("alice@example.org",),
        ("ａlice@example.org",),
        ("carol@example.org",),
    ]
    assert await _rows(url, "SELECT name_key FROM departments ORDER BY id") == [
        ("cardiology",),
        ("cardiology ",),
        ("ｏncology",),
        ("cardiology\u3000",),
    ]


async def test_logins_before_mfa_are_password_logins(fresh_database_url: Any) -> None:
    """0007: an existing login (token family) gets `amr` 'pwd'; downgrading drops MFA."""
    url, config, engine = await _at_revision(fresh_database_url, "0006")
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        user_id = await connection.scalar(
            text(
                "INSERT INTO users (username, username_key, email, email_key, full_name, "
                "full_name_key, password_hash, role, is_active, tokens_valid_after, created_at) "
                "VALUES ('dana', 'dana', 'd@example.org', 'd@example.org', 'Dana', 'dana', 'x', "
                "'admin', true, :now, :now) RETURNING id"
            ),
            {"now": now},
        )
        await connection.execute(
            text(
                "INSERT INTO token_families (id, user_id, current_refresh_jti, created_at, "
                "expires_at) VALUES ('f1', :user, 'j1', :now, :now)"
            ),
            {"user": user_id, "now": now},
        )
    await engine.dispose()
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _rows(url, "SELECT id, amr FROM token_families") == [("f1", "pwd")]
    await asyncio.to_thread(command.downgrade, config, "0006")
    tables = await _tables(url)
    assert not {"mfa_totp_credentials", "mfa_recovery_codes"} & tables
    assert await _rows(url, "SELECT id FROM token_families") == [("f1",)]
