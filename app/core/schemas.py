"""Building blocks shared by every domain's schemas."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from annotated_types import GroupedMetadata, MaxLen, MinLen
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator


def reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def no_default(schema: dict[str, Any]) -> None:
    """For a field that may be left out but never sent as null: the schema shows no
    `default: null` that would be refused (`Field(default=None, json_schema_extra=...)`)."""
    schema.pop("default", None)


# For string query parameters: `Annotated[str, Query(max_length=100), NoNul]`.
NoNul = AfterValidator(reject_nul)


@dataclass(frozen=True, slots=True)
class Text(GroupedMetadata):
    """A string stored exactly as sent: bounded, and never containing NUL.

    `Annotated[str, Text(200)]` in a schema, `Annotated[str | None, Query(), Text(100)]`
    for a query parameter.
    """

    max_length: int
    min_length: int = 0

    def __iter__(self) -> Iterator[object]:
        yield MinLen(self.min_length)
        yield MaxLen(self.max_length)
        yield NoNul


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused, and no string may hold a NUL character
    (PostgreSQL cannot store one; it is never legitimate input). Bound every string field
    with `Annotated[str, Text(max_length)]`."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str):
            return reject_nul(value)
        return value


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
