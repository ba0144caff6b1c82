"""The console script, run as a user would: a real process on a temporary SQLite file."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.main import create_app
from app.users.models import Role, User


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "ENVIRONMENT": "development",
        **env,
    }
    environment.pop("SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )


def _user_count(tmp_path: Path) -> int:
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as connection:
        count: int = connection.execute("SELECT count(*) FROM users").fetchone()[0]
    return count


def test_migrate_then_seed_demo_once_and_show_its_accounts_at_every_start(
    tmp_path: Path,
) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    first = run_cli(tmp_path, "seed-demo", "--if-empty")
    assert first.returncode == 0, first.stderr
    assert "DEVELOPMENT ONLY" in first.stdout
    assert "dr.house" in first.stdout
    users = _user_count(tmp_path)

    again = run_cli(tmp_path, "seed-demo", "--if-empty")
    assert again.returncode == 0
    assert "not added" in again.stdout
    assert _user_count(tmp_path) == users
    assert first.stdout.split("DEVELOPMENT ONLY")[1] == again.stdout.split("DEVELOPMENT ONLY")[1]


def test_seed_demo_lists_only_the_accounts_that_still_log_in(tmp_path: Path) -> None:
    import sqlite3

    assert run_cli(tmp_path, "migrate").returncode == 0
    assert run_cli(tmp_path, "seed-demo", "--if-empty").returncode == 0
    changed = run_cli(tmp_path, "create-admin", "other", ADMIN_PASSWORD="a long admin passphrase")
    assert changed.returncode == 0, changed.stderr
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        other_hash = connection.execute(
            "SELECT password_hash FROM users WHERE username = 'other'"
        ).fetchone()[0]
        connection.execute(
            "UPDATE users SET password_hash = ? WHERE username = 'alice'", [other_hash]
        )
        connection.execute("UPDATE users SET is_active = 0 WHERE username = 'bob'")

    again = run_cli(tmp_path, "seed-demo", "--if-empty")
    assert again.returncode == 0, again.stderr
    listed = {line.split()[1] for line in again.stdout.splitlines() if line.startswith("  ")}
    assert listed == {"admin", "dr.house", "dr.grey", "dr.quinn", "carol", "dave"}


def test_seed_demo_on_a_database_without_demo_accounts(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    made = run_cli(tmp_path, "create-admin", "root", ADMIN_PASSWORD="a long admin passphrase")
    assert made.returncode == 0, made.stderr
    result = run_cli(tmp_path, "seed-demo", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "database already has users: demo data not added\n"


def test_seed_demo_refused_in_production(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "seed-demo", ENVIRONMENT="production", SECRET_KEY="s" * 40)
    assert result.returncode == 2
    assert "development only" in result.stderr


def test_create_admin_is_idempotent_and_checks_the_password(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    weak = run_cli(tmp_path, "create-admin", "root", ADMIN_PASSWORD="password123")
    assert weak.returncode == 2
    assert "password123" not in weak.stdout + weak.stderr
    good = run_cli(tmp_path, "create-admin", "root", ADMIN_PASSWORD="a long admin passphrase")
    assert good.returncode == 0, good.stderr
    assert "created" in good.stdout
    again = run_cli(tmp_path, "create-admin", "ROOT", ADMIN_PASSWORD="another long passphrase")
    assert again.returncode == 0
    assert "already exists" in again.stdout


def test_purge_expired_tokens_runs(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    result = run_cli(tmp_path, "purge-expired-tokens")
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stdout


async def test_first_admin_is_created_once_and_never_overwritten(
    fresh_database_url: Any,
) -> None:
    url = await fresh_database_url()
    settings = Settings(
        database_url=url,
        environment="test",
        secret_key="k" * 40,
        first_admin_username="chief",
        first_admin_password="first admin passphrase",
    )
    for password in ("first admin passphrase", "changed passphrase ignored"):
        app = create_app(settings.model_copy(update={"first_admin_password": password}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                login = await http.post(
                    "/auth/login/",
                    json={"username": "chief", "password": "first admin passphrase"},
                )
                assert login.status_code == 200
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        admins = await session.scalar(
            select(func.count(User.id)).where(User.username_key == "chief")
        )
        role = await session.scalar(select(User.role).where(User.username_key == "chief"))
    await engine.dispose()
    assert admins == 1
    assert role == Role.ADMIN
