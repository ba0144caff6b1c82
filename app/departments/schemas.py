"""Request and response shapes of departments."""

from typing import Annotated

from pydantic import ConfigDict, Field

from app.core.schemas import RequestModel, ResponseModel, Text, no_default

Name = Annotated[str, Text(100, 1)]


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
