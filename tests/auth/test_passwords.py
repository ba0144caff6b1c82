"""Password rules (NIST SP 800-63B) and real hashing: no truncation, any Unicode."""

import os
import sys
import threading

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import common_passwords, password_problem
from app.auth.schemas import LoginForm, LoginRequest, PasswordChangeRequest, RegisterRequest
from app.auth.service import Credentials
from app.core import security
from app.users.models import User
from tests.auth.conftest import login, registration


def test_the_shipped_list_holds_at_least_10000_real_passwords() -> None:
    passwords = common_passwords()
    assert len(passwords) >= 10_000
    assert {"password", "123456", "qwerty", "iloveyou", "password123"} <= passwords


@pytest.mark.parametrize(
    ("password", "username", "problem"),
    [
        ("short", "alice", "at least 10"),
        ("x" * 129, "alice", "at most 128"),
        ("Alice.Smith", "alice.smith", "username"),
        ("PassWord123", "alice", "common"),
        ("nul\x00inside password", "alice", "NUL"),
        (" " * 10, "alice", "repeat"),
        ("aaaaaaaaaa", "alice", "repeat"),
        ("ＡＡＡＡＡＡＡＡＡＡ", "alice", "repeat"),  # fullwidth: the same letters
        ("abababababab", "alice", "repeat"),
        ("tomtomtomtom", "alice", "repeat"),
        ("aaaaabbbbb", "alice", "repeat"),
        ("abcdefghij", "alice", "consecutive"),
        ("ABCDEFGHIJKL", "alice", "consecutive"),
        ("9876543210", "alice", "consecutive"),
        ("0123456789", "alice", "consecutive"),
        ("1234abcdef", "alice", "consecutive"),
        ("лмнопрстуф", "alice", "consecutive"),  # any script
    ],
)
def test_password_problem_names_the_rule(password: str, username: str, problem: str) -> None:
    message = password_problem(password, username)
    assert message is not None
    assert problem in message
    assert password not in message


# 128 characters, none of them a pattern.
LONGEST = " ".join(f"word{n}" for n in range(30))[:128]


@pytest.mark.parametrize(
    "password",
    [
        "plum tree!",
        LONGEST,
        "ünïcödé pässwörd",
        "🔐🦊🌵🎻🧭🚲🍋🪐🐙🎲",
        "abcd1234!!",
        "Tr0ub4dor&3",
    ],
)
def test_acceptable_passwords(password: str) -> None:
    assert password_problem(password, "alice") is None


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("nine char", None),  # 9 characters
        ("z" * 129, None),
        ("Username_12", "username_12"),  # the username, other letter case
        ("qwertyuiop", None),  # common
        ("Password123", None),  # common, other letter case
        ("1234567890", None),
        (" " * 10, None),  # repetitive
        ("zzzzzzzzzzzz", None),
        ("abcdefghij", None),  # sequential
        ("9876543210", None),
    ],
)
async def test_register_refuses_bad_passwords_without_echoing_them(
    client: httpx.AsyncClient, password: str, username: str | None
) -> None:
    payload = registration(password=password, **({"username": username} if username else {}))
    response = await client.post("/auth/register/", json=payload)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert "input" not in error
    assert password not in response.text


@pytest.mark.parametrize("password", ["ten chars!", LONGEST])
async def test_length_bounds_are_inclusive(client: httpx.AsyncClient, password: str) -> None:
    response = await client.post("/auth/register/", json=registration(password=password))
    assert response.status_code == 201


async def test_100_byte_password_is_hashed_whole(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    """bcrypt would keep only the first 72 bytes; every character must count."""
    password = "A" * 72 + "-the-tail-matters-too-123"  # ASCII: one byte per character
    password += "x" * (100 - len(password))
    assert len(password.encode()) == 100
    payload = registration(password=password)
    assert (await client.post("/auth/register/", json=payload)).status_code == 201
    stored = await db.scalar(select(User.password_hash).where(User.username == payload["username"]))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert password not in stored
    assert (await login(client, payload["username"], password)).status_code == 200
    same_72_bytes = password[:72] + "y" * 28
    assert (await login(client, payload["username"], same_72_bytes)).status_code == 401


async def test_25_emoji_password(client: httpx.AsyncClient) -> None:
    password = "🦊🌵🎻🧭🚲🍋🪐🐙🎲🧩🌶🦉🏔🪁🥝🐝🎈🧊🦀🌻🪗🦔🍄🛶🐢"
    assert len(password) == 25
    payload = registration(password=password)
    assert (await client.post("/auth/register/", json=payload)).status_code == 201
    assert (await login(client, payload["username"], password)).status_code == 200
    assert (await login(client, payload["username"], password[:-1] + "🐇")).status_code == 401


def test_secrets_are_left_out_of_reprs() -> None:
    """A request model or credentials that end up in a log line do not carry the secret."""
    secret = "s3cret passphrase!"
    shown = [
        LoginRequest(username="alice", password=secret),
        LoginForm(username="alice", password=secret, client_secret=secret),
        PasswordChangeRequest(current_password=secret, new_password=secret + "2"),
        RegisterRequest(username="alice", email="a@example.org", password=secret, full_name="A"),
        Credentials("alice", secret),
    ]
    for item in shown:
        assert "alice" in repr(item) or isinstance(item, PasswordChangeRequest)
        assert secret not in repr(item)
        assert secret not in str(item)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
async def test_hashing_runs_below_the_event_loop_priority() -> None:
    """A login storm fills the cores with argon2; the threads doing it yield to the loop."""

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_niceness = niceness()
    assert await security._off_loop(niceness) == loop_niceness + security.HASHING_NICENESS
