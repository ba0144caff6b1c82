"""Request and response shapes of patient records."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from app.core.responses import MAX_ID
from app.core.schemas import RequestModel, ResponseModel, Text

Diagnosis = Annotated[str, Text(2000, 1)]
ClinicalText = Annotated[str, Text(20000)]


def _no_default(schema: dict[str, Any]) -> None:
    """Optional, but never null: the schema shows no `default: null` that would be refused."""
    schema.pop("default", None)


class RecordPublic(ResponseModel):
    id: int
    patient_id: int
    department_id: int
    author_id: int
    diagnosis: str
    observations: str | None
    treatments: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class RecordCreate(RequestModel):
    """`department_id` and `author_id` come from the writing doctor: naming them is a 422."""

    patient_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    diagnosis: Diagnosis
    observations: ClinicalText | None = None
    treatments: ClinicalText | None = None
    notes: ClinicalText | None = None


class RecordUpdate(RequestModel):
    """Only the fields sent change; the diagnosis may change but never be removed."""

    diagnosis: Diagnosis = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    observations: ClinicalText | None = None
    treatments: ClinicalText | None = None
    notes: ClinicalText | None = None


class RecordVersionPublic(RecordPublic):
    """One version of a record as it was written: `id` is the record's id."""

    id: int = Field(validation_alias="record_id")
