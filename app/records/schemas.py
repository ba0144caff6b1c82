"""Request and response shapes of patient records."""

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from app.core.responses import MAX_ID
from app.core.schemas import RequestModel, ResponseModel, Text, no_default

Diagnosis = Annotated[str, Text(2000, 1)]
ClinicalText = Annotated[str, Text(20000)]


class RecordPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 311,
                    "patient_id": 12,
                    "department_id": 1,
                    "author_id": 7,
                    "diagnosis": "Hypertension, stage 1",
                    "observations": "BP 150/95",
                    "treatments": "Lisinopril 10 mg daily",
                    "notes": None,
                    "version": 2,
                    "created_at": "2026-11-20T10:00:00Z",
                    "updated_at": "2026-11-27T09:00:00Z",
                }
            ]
        }
    )

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

    diagnosis: Diagnosis = Field(default=None, json_schema_extra=no_default)  # type: ignore[assignment]
    observations: ClinicalText | None = None
    treatments: ClinicalText | None = None
    notes: ClinicalText | None = None


class RecordVersionPublic(RecordPublic):
    """One version of a record as it was written: `id` is the record's id."""
