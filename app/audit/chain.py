"""The hash chain: pure functions shared by the append and the verification."""

import hashlib
from datetime import datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


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
    canonical: list[Any] = [
        at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
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
    ]
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def link(previous_hash: str, digest: str) -> str:
    """The event's hash: binds its content to its predecessor's hash."""
    return hashlib.sha256((previous_hash + digest).encode()).hexdigest()
