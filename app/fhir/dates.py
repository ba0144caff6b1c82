"""FHIR date search values (`ge2024-03`, `lt2024-03-01T10:00:00Z`) as comparisons.

A value stands for the range its precision implies: `2024-03` is [March 1st, April 1st).
The prefixes compare a stored instant (or day) with that range: `eq` within it, `ne`
outside, `ge` from its start, `gt` from its end, `lt` before its start, `le` before its
end. A time without an offset is taken as UTC.
"""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_COMPARISONS = {
    "eq": ("within", (0, 1)),
    "ne": ("outside", (0, 1)),
    "ge": ("ge", (0,)),
    "gt": ("ge", (1,)),
    "lt": ("lt", (0,)),
    "le": ("lt", (1,)),
}
_VALUE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)


def comparison(value: str, kind: str) -> tuple[str, tuple[Any, ...]]:
    """(core.filters comparison, its values) of a prefixed date value; `kind` is `date`
    (the column holds days) or `instant`. ValueError for anything else."""
    prefix = value[:2] if value[:2] in PREFIXES else ""
    if value[:2].isalpha() and not prefix:
        raise ValueError(f"unsupported prefix {value[:2]!r} (use {', '.join(PREFIXES)})")
    start, end = _range(value[len(prefix) :])
    if kind == "date":
        bounds: tuple[Any, Any] = (_day(start, up=False), _day(end, up=True))
    else:
        bounds = (start, end)
    name, which = _COMPARISONS[prefix or "eq"]
    return name, tuple(bounds[index] for index in which)


def _range(text: str) -> tuple[datetime, datetime]:
    match = _VALUE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)")
    parts = match.groupdict()
    if parts["hour"] is not None and parts["day"] is None:
        raise ValueError(f"{text!r} is not a FHIR date")
    try:
        zone = _zone(parts["offset"])
        year = int(parts["year"])
        if parts["month"] is None:
            start = datetime(year, 1, 1, tzinfo=zone)
            end = datetime(year + 1, 1, 1, tzinfo=zone)
        elif parts["day"] is None:
            month = int(parts["month"])
            start = datetime(year, month, 1, tzinfo=zone)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        else:
            start, step = _instant(parts, zone)
            end = start + step
        return start.astimezone(UTC), end.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a date this server can search for") from None


def _instant(parts: dict[str, str | None], zone: timezone) -> tuple[datetime, timedelta]:
    fraction = parts["fraction"] or ""
    start = datetime(
        int(parts["year"] or 0),
        int(parts["month"] or 0),
        int(parts["day"] or 0),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
        tzinfo=zone,
    )
    if parts["hour"] is None:
        return start, timedelta(days=1)
    if parts["second"] is None:
        return start, timedelta(minutes=1)
    if not fraction:
        return start, timedelta(seconds=1)
    return start, timedelta(microseconds=10 ** max(0, 6 - len(fraction)))


def _zone(offset: str | None) -> timezone:
    if offset is None or offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _day(instant: datetime, *, up: bool) -> date:
    """The day a bound of a range falls on, for a column of days: a range's start rounds
    down, its end up (a day counts when any part of it is in the range)."""
    day = instant.date()
    if up and instant.time() != datetime.min.time():
        day += timedelta(days=1)
    return day
