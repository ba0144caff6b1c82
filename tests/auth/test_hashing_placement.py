"""Where argon2 runs: never on the event loop, never while the request holds row locks.

The hasher is the real one; these tests only look at where and when it is called.
"""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import security
from tests.auth.conftest import bearer, registration
from tests.live import Live, start


@pytest.fixture
async def live(fresh_database_url: Callable[[], Any]) -> AsyncIterator[Live]:
    """The app in this process: the hasher these tests watch is patched here."""
    async with await start(await fresh_database_url(), in_process=True) as app:
        yield app


async def test_the_dummy_hash_is_made_off_the_event_loop(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown username is verified against a dummy hash; making it (once per process)
    must not stall the loop either."""
    security._dummy_hash.cache_clear()
    threads: list[str] = []
    real = security.hash_password_sync

    def observed(password: str) -> str:
        threads.append(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(security, "hash_password_sync", observed)
    response = await live.client.post(
        "/auth/login/", json={"username": "nobody_at_all", "password": "whatever it is 1"}
    )
    assert response.status_code == 401
    assert threads, "the dummy hash was made before the login"
    assert all(name.startswith("argon2") for name in threads), threads


async def test_start_up_prepares_the_dummy_hash(fresh_database_url: Any) -> None:
    security._dummy_hash.cache_clear()
    async with await start(await fresh_database_url(), in_process=True):
        assert security._dummy_hash.cache_info().currsize == 1  # before any login


class Locks:
    """Whether another connection could lock the user's row and lock-out counter right now
    (PostgreSQL: FOR UPDATE NOWAIT; SQLite: BEGIN IMMEDIATE, the app's write lock)."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.url, self.loop = url, loop
        self.postgres = make_url(url).get_backend_name() == "postgresql"
        self.engine = create_async_engine(url) if self.postgres else None

    async def _postgres_free(self, user_id: int, username_key: str) -> bool:
        assert self.engine is not None
        async with self.engine.connect() as connection:
            try:
                for statement in (
                    "SELECT 1 FROM users WHERE id = :id FOR UPDATE NOWAIT",
                    "SELECT 1 FROM login_failures WHERE username_key = :key FOR UPDATE NOWAIT",
                ):
                    await connection.execute(text(statement), {"id": user_id, "key": username_key})
            except DBAPIError:  # lock_not_available
                return False
            finally:
                await connection.rollback()
        return True

    def free(self, user_id: int, username_key: str) -> bool:
        """Called on a hashing thread, while the event loop waits for it."""
        if self.postgres:
            probe = self._postgres_free(user_id, username_key)
            return asyncio.run_coroutine_threadsafe(probe, self.loop).result(timeout=30)
        database = make_url(self.url).database
        assert database
        connection = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
        except sqlite3.OperationalError:  # database is locked
            return False
        finally:
            connection.close()
        return True


class ObservedHasher:
    """The real password context, asking `probe` before each argon2 computation."""

    def __init__(self, real: Any, probe: Callable[[], bool]) -> None:
        self.real, self.probe, self.seen = real, probe, []

    def hash(self, secret: str) -> str:
        self.seen.append(("hash", self.probe()))
        return str(self.real.hash(secret))

    def verify_and_update(self, secret: str, stored: str) -> Any:
        self.seen.append(("verify", self.probe()))
        return self.real.verify_and_update(secret, stored)


@pytest.mark.parametrize(
    ("current", "status"), [("plum orchard at dusk 42", 204), ("not the password 1", 422)]
)
async def test_a_password_change_hashes_without_holding_row_locks(
    live: Live, monkeypatch: pytest.MonkeyPatch, current: str, status: int
) -> None:
    payload = registration()
    user = (await live.client.post("/auth/register/", json=payload)).json()
    credentials = {"username": payload["username"], "password": payload["password"]}
    token = (await live.client.post("/auth/login/", json=credentials)).json()["access_token"]
    assert current == payload["password"] or status == 422
    # A failed login makes the counter row exist, so that it is there to be locked.
    wrong = {**credentials, "password": "wrong password 1"}
    assert (await live.client.post("/auth/login/", json=wrong)).status_code == 401

    locks = Locks(live.database_url, asyncio.get_running_loop())
    key = payload["username"].casefold()
    hasher = ObservedHasher(security._passwords, lambda: locks.free(user["id"], key))
    monkeypatch.setattr(security, "_passwords", hasher)
    response = await live.client.post(
        "/auth/password/",
        json={"current_password": current, "new_password": "a brand new passphrase 7"},
        headers=bearer(token),
    )
    monkeypatch.undo()
    if locks.engine is not None:
        await locks.engine.dispose()
    assert response.status_code == status, response.text
    expected = ["verify", "hash"] if status == 204 else ["verify"]
    assert [kind for kind, _ in hasher.seen] == expected
    assert all(free for _, free in hasher.seen), hasher.seen
