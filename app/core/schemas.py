"""Building blocks shared by every domain's schemas."""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator


def reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# For string query parameters: `Annotated[str, Query(max_length=100), NoNul]`.
NoNul = AfterValidator(reject_nul)


def text(max_length: int, min_length: int = 0) -> type[str]:
    """A string stored exactly as sent: bounded, and never containing NUL."""
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(min_length=min_length, max_length=max_length),
        NoNul,
    ]


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused, and no string may hold a NUL character
    (PostgreSQL cannot store one; it is never legitimate input). Bound every string field
    with `Annotated[str, StringConstraints(max_length=...)]`."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str):
            return reject_nul(value)
        return value


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
