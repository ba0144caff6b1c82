"""Request and response shapes of departments."""

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from app.core.schemas import RequestModel, ResponseModel, Text, no_default
from app.users.models import casefold_key

NAME_MAX_LENGTH = 100  # Department.name and Department.name_key


def _has_a_key(name: str) -> str:
    """Names are unique by their key (casefold_key), which must be neither empty nor too
    long for its column. The name is stored as sent."""
    key = casefold_key(name)
    if not key:
        raise ValueError("must not be blank")
    if len(key) > NAME_MAX_LENGTH:
        raise ValueError(f"must be at most {NAME_MAX_LENGTH} characters once normalised")
    return name


Name = Annotated[str, Text(NAME_MAX_LENGTH, 1), AfterValidator(_has_a_key)]


class DepartmentPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "Cardiology",
                    "description": "Heart and vessels",
                    "location": "Building A, floor 2",
                    "specialization": "Cardiology",
                }
            ]
        }
    )

    id: int
    name: str
    description: str | None
    location: str | None
    specialization: str | None


class DepartmentCreate(RequestModel):
    name: Name
    description: Annotated[str, Text(2000)] | None = None
    location: Annotated[str, Text(200)] | None = None
    specialization: Annotated[str, Text(200)] | None = None


class DepartmentUpdate(RequestModel):
    """Only the fields sent change; the name may change but never be removed."""

    name: Name = Field(default=None, json_schema_extra=no_default)  # type: ignore[assignment]
    description: Annotated[str, Text(2000)] | None = None
    location: Annotated[str, Text(200)] | None = None
    specialization: Annotated[str, Text(200)] | None = None
