"""Request and response shapes of departments."""

from typing import Any

from pydantic import Field

from app.core.schemas import RequestModel, ResponseModel, text

Name = text(100, min_length=1)


def _no_default(schema: dict[str, Any]) -> None:
    """Optional, but never null: the schema shows no `default: null` that would be refused."""
    schema.pop("default", None)


class DepartmentPublic(ResponseModel):
    id: int
    name: str
    description: str | None
    location: str | None
    specialization: str | None


class DepartmentCreate(RequestModel):
    name: Name  # type: ignore[valid-type]
    description: text(2000) | None = None  # type: ignore[valid-type]
    location: text(200) | None = None  # type: ignore[valid-type]
    specialization: text(200) | None = None  # type: ignore[valid-type]


class DepartmentUpdate(RequestModel):
    """Only the fields sent change; the name may change but never be removed."""

    name: Name = Field(default=None, json_schema_extra=_no_default)  # type: ignore[valid-type]
    description: text(2000) | None = None  # type: ignore[valid-type]
    location: text(200) | None = None  # type: ignore[valid-type]
    specialization: text(200) | None = None  # type: ignore[valid-type]
