"""The hash chain: pure functions shared by the append and the verification."""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
_ZERO = timedelta(0)

# The event's content in canonical order: every column but its id and its hash. Fields
# added later go at the end, and leave the canonical form when null (see digest_of).
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
    "patient_ids",
)


def canonical_time(at: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (isoformat is C code: cheaper than strftime)."""
    if at.tzinfo is not UTC and at.utcoffset() != _ZERO:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


def digest_of(at: datetime | str, *rest: Any) -> str:
    """SHA-256 of the canonical content, given positionally in CONTENT_FIELDS order
    (`at` as a datetime, or already as its canonical text).

    A null `patient_ids` (the last field) is left out, so that every event written before
    the field existed keeps its digest, and the chain they form still verifies.
    """
    when = at if isinstance(at, str) else canonical_time(at)
    if rest[-1] is None:
        rest = rest[:-1]
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
    patient_ids: str | None = None,
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
        patient_ids,
    )


def canonical_patient_ids(patient_ids: Iterable[int]) -> str:
    """The `patient_ids` of an event that touched several patients: their sorted distinct
    ids as compact JSON (`[3,17,42]`), the text stored and hashed."""
    return orjson.dumps(sorted(set(patient_ids))).decode()


def link(previous_hash: str, digest: str) -> str:
    """The event's hash: binds its content to its predecessor's hash."""
    return hashlib.sha256((previous_hash + digest).encode()).hexdigest()
