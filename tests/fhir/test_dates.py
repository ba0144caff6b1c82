"""FHIR date search values as the ranges they stand for."""

from datetime import UTC, date, datetime

import pytest

from app.fhir.dates import comparison


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", ("within", (at(2024, 1, 1), at(2025, 1, 1)))),
        ("eq2024-12", ("within", (at(2024, 12, 1), at(2025, 1, 1)))),
        ("ne2024-02-29", ("outside", (at(2024, 2, 29), at(2024, 3, 1)))),
        ("ge2024-03-01T10:00", ("ge", (at(2024, 3, 1, 10),))),
        ("gt2024-03-01T10:00", ("ge", (at(2024, 3, 1, 10, 1),))),
        ("lt2024-03-01T10:00:30Z", ("lt", (at(2024, 3, 1, 10, 0, 30),))),
        ("le2024-03-01T10:00:30Z", ("lt", (at(2024, 3, 1, 10, 0, 31),))),
        ("le2024-03-01T10:00:30.5Z", ("lt", (at(2024, 3, 1, 10, 0, 30, 600000),))),
        ("eq2024-03-01T12:00:00+02:00", ("within", (at(2024, 3, 1, 10), at(2024, 3, 1, 10, 0, 1)))),
    ],
)
def test_instants(value: str, expected: tuple[str, tuple[datetime, ...]]) -> None:
    assert comparison(value, "instant") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1980", ("within", (date(1980, 1, 1), date(1981, 1, 1)))),
        ("gt1980-02", ("ge", (date(1980, 3, 1),))),
        ("le1980-02-29", ("lt", (date(1980, 3, 1),))),
        ("eq1980-01-01T10:00Z", ("within", (date(1980, 1, 1), date(1980, 1, 2)))),
    ],
)
def test_days(value: str, expected: tuple[str, tuple[date, ...]]) -> None:
    assert comparison(value, "date") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "24",
        "2024-13",
        "2024-02-30",
        "sa2024",
        "xx2024",
        "2024-01-01T25:00",
        "2024-01T10:00",
        "9999",
        "0000",
        "2024-01-01T10:00+24:00",
        "2024-01-01 10:00",
        "１９８０",
    ],
)
def test_what_is_no_date_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="."):
        comparison(value, "instant")
