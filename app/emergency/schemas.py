"""Request and response shapes of emergency ("break the glass") access grants."""

import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from app.core.schemas import RequestModel, ResponseModel, Text

REASON_MIN = 10
REASON_MAX = 500


def _readable(character: str) -> bool:
    """Neither a space of any kind nor an invisible control or format character."""
    return not character.isspace() and unicodedata.category(character)[0] not in "CZ"


def _says_something(reason: str) -> str:
    """A reviewer must be able to read why: at least REASON_MIN characters besides spaces.
    The text is stored as sent."""
    if sum(map(_readable, reason)) < REASON_MIN:
        raise ValueError(f"must contain at least {REASON_MIN} characters other than spaces")
    return reason


class EmergencyAccessCreate(RequestModel):
    reason: Annotated[str, Text(REASON_MAX, REASON_MIN), AfterValidator(_says_something)] = Field(
        description=(
            "Why the patient's records are needed now (10-500 characters, at least 10 of "
            "them other than spaces); reviewed"
        ),
        examples=["Unconscious patient in the emergency room, allergies unknown"],
    )


class EmergencyGrantPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "patient_id": 12,
                    "doctor_id": 9,
                    "reason": "Unconscious patient admitted to the ER, allergies unknown",
                    "created_at": "2026-11-27T03:10:00Z",
                    "expires_at": "2026-11-27T04:10:00Z",
                }
            ]
        }
    )

    id: int
    patient_id: int
    doctor_id: int
    reason: str
    created_at: datetime
    expires_at: datetime


class EmergencyGrantReview(EmergencyGrantPublic):
    """A grant as admins review it; `active` is true until `expires_at`."""

    active: bool
