"""Limits per client address, for endpoints anyone may call (register, login, refresh, the
second step of an MFA login).

A route takes `Depends(rate_limit("login", lambda s: s.rate_limit_login))`, or calls
`enforce` itself when the limit depends on the caller. Each policy allows `limit` requests
per address in a fixed window of `window` seconds; past that the answer is 429 with
`Retry-After`. Every answer of a limited route carries the policy and what is left, in the
fields of draft-ietf-httpapi-ratelimit-headers (-11):

    RateLimit-Policy: "login";q=300;w=60
    RateLimit: "login";r=287;t=42

The counters live where every process sees them: a table of the database (an atomic
upsert per request; on SQLite, shared by the processes of one host), or Redis when
`REDIS_URL` is set. Windows are offset per address (by a hash of its key), so that the
clients of a busy address do not all come back at the same instant.
"""

import ipaddress
import logging
import math
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import Request, Response
from sqlalchemy import String, case, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.core.config import Rate, Settings
from app.core.db import Base, utcnow
from app.core.dependencies import request_meta
from app.core.errors import TooManyRequests
from app.core.observability import RATE_LIMITED

logger = logging.getLogger("app.ratelimit")
REFUSED = "Too many requests from this address, try again later"
KEY_LENGTH = 100


class RateLimitCounter(Base):
    """Requests of one client address under one policy in the current window."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)  # policy:address
    window_ends_at: Mapped[datetime] = mapped_column(index=True)
    hits: Mapped[int]


async def purge(session: AsyncSession, now: datetime) -> int:
    """Delete the counters of windows that have ended (a new window starts a new count)."""
    result = await session.execute(
        delete(RateLimitCounter).where(RateLimitCounter.window_ends_at < now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def client_key(ip: str | None) -> str:
    """The address a limit counts by: an IPv6 client by its /64 (one subscriber's network
    hands out as many addresses as it likes), an IPv4 client by its own address."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class Usage:
    policy: str
    rate: Rate
    hits: int  # this request included
    reset_seconds: int  # until the window ends

    @property
    def exceeded(self) -> bool:
        return self.hits > self.rate.limit

    def headers(self) -> dict[str, str]:
        remaining = max(0, self.rate.limit - self.hits)
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.rate.limit};w={self.rate.window}',
            "RateLimit": f'"{self.policy}";r={remaining};t={self.reset_seconds}',
        }


class Counters(Protocol):
    async def hit(self, key: str, window_ends_at: datetime, window: int) -> int:
        """Count one request in the window ending at `window_ends_at`; the count so far."""
        ...

    async def close(self) -> None: ...


class DatabaseCounters:
    """One row per key, incremented (or restarted for a new window) in one statement."""

    def __init__(self, sessionmaker: Callable[[], async_sessionmaker[AsyncSession]]) -> None:
        self._sessionmaker = sessionmaker  # looked up per call: tests swap it

    async def hit(self, key: str, window_ends_at: datetime, window: int) -> int:
        async with self._sessionmaker()() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            insert = (postgresql_insert if postgres else sqlite_insert)(RateLimitCounter)
            values = insert.values(key=key, window_ends_at=window_ends_at, hits=1)
            same_window = RateLimitCounter.window_ends_at == values.excluded.window_ends_at
            statement = values.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "hits": case((same_window, RateLimitCounter.hits + 1), else_=1),
                    "window_ends_at": values.excluded.window_ends_at,
                },
            ).returning(RateLimitCounter.hits)
            hits = int((await session.execute(statement)).scalar_one())
            await session.commit()
        return hits

    async def close(self) -> None:
        pass


# INCR and its expiry in one step; a key lives one window past its own (the clock of the
# process that named it and Redis's may differ a little).
_REDIS_HIT = """
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return hits
"""


class RedisCounters:
    """One key per address, policy and window, expiring after its window."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis  # only needed when configured

        self._redis: Any = Redis.from_url(url)
        self._script = self._redis.register_script(_REDIS_HIT)

    async def hit(self, key: str, window_ends_at: datetime, window: int) -> int:
        name = f"hospital:ratelimit:{key}:{int(window_ends_at.timestamp())}"
        return int(await self._script(keys=[name], args=[2 * window]))

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    async def hit(self, policy: str, rate: Rate, client: str, now: datetime) -> Usage:
        key = f"{policy}:{client}"[:KEY_LENGTH]
        # Each key's windows start at its own offset into the window (the same in every
        # process): fixed windows, but not every client's ending at once.
        offset = zlib.crc32(key.encode()) % rate.window
        elapsed = now.timestamp() - offset
        window_end = (math.floor(elapsed / rate.window) + 1) * rate.window + offset
        window_ends_at = datetime.fromtimestamp(window_end, tz=UTC)
        hits = await self.counters.hit(key, window_ends_at, rate.window)
        reset = max(1, math.ceil(window_end - now.timestamp()))
        return Usage(policy, rate, hits, reset)


def create_limiter(settings: Settings, app_state: Any) -> RateLimiter | None:
    """The limiter of an app (None when disabled), counting in Redis or the database."""
    if not settings.rate_limit_enabled:
        return None
    if settings.redis_url:
        return RateLimiter(RedisCounters(settings.redis_url))
    return RateLimiter(DatabaseCounters(lambda: app_state.sessionmaker))


async def enforce(request: Request, response: Response, policy: str, rate: Rate) -> None:
    """Count this request against `policy` for its client address: 429 past the limit,
    else the RateLimit fields on `response`."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    client = client_key(request_meta(request).ip)
    try:
        usage = await limiter.hit(policy, rate, client, utcnow())
    except Exception as error:  # Redis unreachable: the per-account lock-out still holds
        if not isinstance(limiter.counters, RedisCounters):
            raise
        logger.warning("rate limit not counted: %s", type(error).__name__)
        return
    headers = usage.headers()
    if usage.exceeded:
        RATE_LIMITED.labels(policy).inc()
        if usage.hits == rate.limit + 1:  # one line per address and window, not per request
            logger.warning("rate limit reached", extra={"policy": policy, "client": client})
        raise TooManyRequests(usage.reset_seconds, REFUSED, headers)
    response.headers.update(headers)
    request.state.rate_limit_headers = headers  # for a refusal that follows (core.handlers)


def rate_limit(
    policy: str, rate_of: Callable[[Settings], Rate]
) -> Callable[[Request, Response], Awaitable[None]]:
    """A dependency that limits a route by `policy`, its rate read from the settings."""

    async def limit(request: Request, response: Response) -> None:
        await enforce(request, response, policy, rate_of(request.app.state.settings))

    limit.__name__ = f"rate_limit_{policy}"
    return limit
