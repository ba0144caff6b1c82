"""The one source of the current time (tests move it instead of sleeping)."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
