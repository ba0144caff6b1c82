"""Passwords and JWTs. The only module that imports passlib or jose."""

import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from jose import JWTError, jwt
from passlib.context import CryptContext

from app.core.db import utcnow

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane); bcrypt hashes
# from an older system still verify and are re-hashed to argon2id on the next login.
_passwords = CryptContext(
    schemes=["argon2", "bcrypt"],
    deprecated=["bcrypt"],
    argon2__type="ID",
    argon2__memory_cost=19 * 1024,
    argon2__rounds=2,
    argon2__parallelism=1,
)


# Hashing runs on a few dedicated threads, not the shared thread pool (40 threads): argon2
# is CPU-bound, so more threads than cores buy nothing, and every thread that has hashed
# keeps its 19 MiB in its malloc arena, so a login storm would grow each worker's memory
# by up to 40 x 19 MiB. A fixed pool bounds both.
# And they run at a lower scheduling priority: argon2 fills every core during a login storm,
# and the requests that need a few hundred microseconds must not queue behind it for the CPU.
HASHING_NICENESS = 10


def _lower_priority() -> None:
    if sys.platform == "linux":  # Linux sets a thread's priority alone (by its thread id)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


_hashing = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 2, thread_name_prefix="argon2", initializer=_lower_priority
)


async def _off_loop(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_hashing, function, *args)


def hash_password_sync(password: str) -> str:
    return str(_passwords.hash(password))


async def hash_password(password: str) -> str:
    """Hash off the event loop: argon2 takes tens of milliseconds of CPU."""
    return str(await _off_loop(hash_password_sync, password))


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, replacement hash when the stored one uses outdated parameters).

    With no stored hash (unknown user) a dummy hash is verified instead, so the answer
    takes as long as for a real user and timing does not reveal which usernames exist.
    """
    stored = password_hash or _dummy_hash()
    ok, new_hash = await _off_loop(_passwords.verify_and_update, password, stored)
    return bool(ok) and password_hash is not None, new_hash


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password_sync(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: str
    jti: str
    family: str
    issued_at: datetime
    expires_at: datetime
    type: TokenType


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class InvalidToken(Exception):
    """Any reason a token cannot be trusted; callers answer 401 without saying which."""


def create_token(
    key: str,
    *,
    user_id: int,
    role: str,
    family: str,
    token_type: TokenType,
    lifetime: timedelta,
) -> IssuedToken:
    now = utcnow()
    claims = TokenClaims(
        user_id=user_id,
        role=role,
        jti=secrets.token_hex(16),
        family=family,
        issued_at=now,
        expires_at=now + lifetime,
        type=token_type,
    )
    payload = {
        "sub": str(user_id),
        "role": role,
        "jti": claims.jti,
        "fam": family,
        "iat": now.timestamp(),  # sub-second: see issued_before
        "exp": int(claims.expires_at.timestamp()),
        "type": token_type,
    }
    return IssuedToken(jwt.encode(payload, key, algorithm=ALGORITHM), claims)


_DECODE_OPTIONS = {
    "require_exp": True,
    "require_iat": True,
    "require_sub": True,
    "require_jti": True,
    "verify_aud": False,
}


def issued_before(claims: TokenClaims, valid_after: datetime) -> bool:
    """Whether the token predates `valid_after` (a password change, a deactivation), to the
    microsecond (auth.caller.CALLER_ROW states the same rule in SQL)."""
    return claims.issued_at < valid_after


def decode_token(key: str, token: str, expected_type: TokenType) -> TokenClaims:
    """Verify signature (HS256 only), expiry and required claims, and the token's type."""
    claims = _verified(key, token, expected_type)
    # A token verified earlier is taken from the cache: its expiry is checked again here,
    # with jose's rule (whole seconds, no leeway).
    if claims.expires_at.timestamp() < int(time.time()):
        raise InvalidToken("expired")
    return claims


# A client presents the same access token with each request until it expires: its
# signature and claims are checked once per process, not once per request (the HMAC and
# jose's parsing were a tenth of a record read's CPU). Only tokens that verified are kept
# (an exception is not cached), keyed by their exact text and the key.
@lru_cache(maxsize=2048)
def _verified(key: str, token: str, expected_type: TokenType) -> TokenClaims:
    try:
        payload: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS
        )
        if payload.get("type") != expected_type:
            raise InvalidToken("wrong token type")
        family, jti = payload.get("fam"), payload["jti"]
        if not isinstance(family, str) or not isinstance(jti, str) or not family or not jti:
            raise InvalidToken("missing family")
        user_id = int(payload["sub"])
        if not 0 < user_id < 2**63:
            raise InvalidToken("bad subject")
        return TokenClaims(
            user_id=user_id,
            role=str(payload.get("role", "")),
            jti=jti,
            family=family,
            issued_at=datetime.fromtimestamp(float(payload["iat"]), tz=UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=UTC),
            type=expected_type,
        )
    except (JWTError, KeyError, TypeError, ValueError, OverflowError) as error:
        raise InvalidToken(str(error)) from None
