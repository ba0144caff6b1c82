"""Passwords and JWTs. The only module that imports passlib or jose."""

import asyncio
import base64
import math
import os
import re
import secrets
import sys
import threading
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
TokenType = Literal["access", "refresh", "mfa"]
# Authentication methods (RFC 8176): a password, and a one-time code of a second factor.
PASSWORD = "pwd"
ONE_TIME_CODE = "otp"
METHODS = (PASSWORD, ONE_TIME_CODE)

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
    stored = password_hash or await _off_loop(_dummy_hash)
    ok, new_hash = await _off_loop(_passwords.verify_and_update, password, stored)
    return bool(ok) and password_hash is not None, new_hash


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Made once per process, on a hashing thread (a hash on the event loop would stall
    every request for its tens of milliseconds)."""
    return hash_password_sync(secrets.token_urlsafe(16))


async def prepare_hashing() -> None:
    """At start-up: the dummy hash is ready before the first login needs it."""
    await _off_loop(_dummy_hash)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: str
    jti: str
    family: str
    issued_at: datetime
    expires_at: datetime
    type: TokenType
    amr: tuple[str, ...] = (PASSWORD,)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class InvalidToken(Exception):
    """Any reason a token cannot be trusted; callers answer 401 without saying which."""


# Clocks of the hosts that issue and check tokens may differ a little; a token issued
# further ahead than this was not issued by us as we are now.
ISSUED_AT_LEEWAY = timedelta(seconds=60)


def create_token(
    key: str,
    *,
    user_id: int,
    role: str,
    family: str,
    token_type: TokenType,
    lifetime: timedelta,
    not_before: datetime | None = None,
    amr: tuple[str, ...] = (PASSWORD,),
) -> IssuedToken:
    """`not_before`: the user's `tokens_valid_after`. The token is issued at that instant if
    this host's clock is behind it, so that a login right after a password change is fresh
    wherever it happens."""
    now = utcnow()
    issued_at = max(now, not_before) if not_before else now
    # `iat` keeps microseconds (a NumericDate may be non-integer, RFC 7519 §2), so that
    # freshness is exact; `exp` stays whole seconds, as clients expect.
    expires_at = datetime.fromtimestamp(int((issued_at + lifetime).timestamp()), tz=UTC)
    claims = TokenClaims(
        user_id=user_id,
        role=role,
        jti=secrets.token_hex(16),
        family=family,
        issued_at=issued_at,
        expires_at=expires_at,
        type=token_type,
        amr=amr,
    )
    payload = {
        "sub": str(user_id),
        "role": role,
        "jti": claims.jti,
        "fam": family,
        "iat": issued_at.timestamp(),
        "exp": int(expires_at.timestamp()),
        "type": token_type,
        "amr": list(amr),
    }
    return IssuedToken(jwt.encode(payload, key, algorithm=ALGORITHM), claims)


def issued_before(claims: TokenClaims, valid_after: datetime) -> bool:
    """The freshness rule: a token issued before `valid_after` (the user's
    `tokens_valid_after`: a password change, a deactivation) is refused. Exact to the
    microsecond; one issued at that very instant is fresh. The per-request SQL check
    (auth.caller.CALLER_ROW) says the same as `tokens_valid_after <= issued_at`."""
    return claims.issued_at < valid_after


def decode_token(key: str, token: str, expected_type: TokenType) -> TokenClaims:
    """Verify the token's text, signature (HS256 only) and claims, then its times."""
    claims = _verified(key, token, expected_type)
    # Checked on every use, not cached: a cached token expires like any other.
    now = utcnow()
    if now >= claims.expires_at:
        raise InvalidToken("expired")
    if claims.issued_at > now + ISSUED_AT_LEEWAY:
        raise InvalidToken("issued in the future")
    return claims


# Segments of a compact JWS: base64url without padding (RFC 7515 §2, §7.1).
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_SUBJECT = re.compile(r"[1-9][0-9]{0,18}")  # ASCII digits only, no sign, no leading zero
_DECODE_OPTIONS = {
    "require_sub": True,
    "require_jti": True,
    "verify_aud": False,
    # `iat` and `exp` are required and checked below, with strict types (jose takes "123"
    # and fails on a list) and with the service's one clock.
    "verify_exp": False,
    "verify_iat": False,
}


def _canonical(token: str) -> bool:
    """Whether `token` is the one spelling of its bytes: three base64url segments, no
    padding, no other character, and unused trailing bits zero (decoding and encoding
    again gives the same text). jose would accept other spellings of the same token."""
    segments = token.split(".")
    if len(segments) != 3:
        return False
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
            return False
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
            return False
    return True


def _numeric_date(value: Any) -> datetime:
    """A JSON number (not a string, a boolean or anything else) as an instant."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken("a time claim is not a number")
    return datetime.fromtimestamp(value, tz=UTC)


def _methods(payload: dict[str, Any]) -> tuple[str, ...]:
    """`amr`: a list of known methods, each once. Tokens issued before the claim existed
    (password logins, the only kind there was) have none."""
    if "amr" not in payload:
        return (PASSWORD,)
    value = payload["amr"]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(method, str) and method in METHODS for method in value)
        or len(set(value)) != len(value)
    ):
        raise InvalidToken("bad amr")
    return tuple(value)


def _text(payload: dict[str, Any], claim: str) -> str:
    value = payload.get(claim)
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"missing {claim}")
    return value


# A client presents the same access token with each request until it expires: its
# signature and claims are checked once per process, not once per request (the HMAC and
# jose's parsing were a tenth of a record read's CPU). Only tokens that verified are kept
# (an exception is not cached), keyed by their text, which is canonical, and the key.
@lru_cache(maxsize=2048)
def _verified(key: str, token: str, expected_type: TokenType) -> TokenClaims:
    if not _canonical(token):
        raise InvalidToken("not a canonical compact JWS")
    try:
        payload: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS
        )
    except (JWTError, TypeError, ValueError) as error:
        raise InvalidToken(str(error)) from None
    if payload.get("type") != expected_type:
        raise InvalidToken("wrong token type")
    subject = payload.get("sub")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject) or int(subject) >= 2**63:
        raise InvalidToken("bad subject")
    try:
        issued_at = _numeric_date(payload.get("iat"))
        expires_at = _numeric_date(payload.get("exp"))
    except (OverflowError, OSError, ValueError):
        raise InvalidToken("a time claim is out of range") from None
    return TokenClaims(
        user_id=int(subject),
        role=_text(payload, "role"),  # required, though authorization uses the user row's
        jti=_text(payload, "jti"),
        family=_text(payload, "fam"),
        issued_at=issued_at,
        expires_at=expires_at,
        type=expected_type,
        amr=_methods(payload),
    )
