"""The hash chain: pure functions shared by the append and the verification."""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
_ZERO = timedelta(0)

# The event's content in canonical order: every column but its id and its hash.
CONTENT_FIELDS = (
    "at",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "ip",
    "request_id",
    "emergency_grant_id",
    "patient_id",
    "department_id",
)


def canonical_time(at: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (isoformat is C code: cheaper than strftime)."""
    if at.tzinfo is not UTC and at.utcoffset() != _ZERO:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


def digest_of(at: datetime | str, *rest: Any) -> str:
    """SHA-256 of the canonical content, given positionally in CONTENT_FIELDS order
    (`at` as a datetime, or already as its canonical text)."""
    when = at if isinstance(at, str) else canonical_time(at)
    return hashlib.sha256(orjson.dumps([when, *rest])).hexdigest()


def content_digest(
    *,
    at: datetime,
    actor_id: int | None,
    action: str,
    resource_type: str,
    resource_id: int | None,
    outcome: str,
    ip: str | None,
    request_id: str | None,
    emergency_grant_id: int | None,
    patient_id: int | None,
    department_id: int | None,
) -> str:
    """SHA-256 of the event's canonical content (every field but its id and its hash)."""
    return digest_of(
        at,
        actor_id,
        action,
        resource_type,
        resource_id,
        outcome,
        ip,
        request_id,
        emergency_grant_id,
        patient_id,
        department_id,
    )


def link(previous_hash: str, digest: str) -> str:
    """The event's hash: binds its content to its predecessor's hash."""
    return hashlib.sha256((previous_hash + digest).encode()).hexdigest()
