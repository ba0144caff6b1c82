"""Request and response shapes of doctors, patients and user activation."""

from datetime import date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool

from app.core.responses import MAX_ID
from app.core.schemas import RequestModel, ResponseModel, Text
from app.users.models import Role, Sex

DepartmentRef = Annotated[int, Field(ge=1, le=MAX_ID)]


class DoctorPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "username": "dr.house",
                    "email": "house@hospital.example",
                    "full_name": "Gregory House",
                    "department_id": 1,
                    "specialization": "Cardiology",
                    "license_number": "MD-48213",
                }
            ]
        }
    )

    id: int
    username: str
    email: str
    full_name: str
    department_id: int | None
    specialization: str | None
    license_number: str | None


class DoctorUpdate(RequestModel):
    """Only the fields sent change; `department_id: null` takes the doctor out of his department."""

    department_id: DepartmentRef | None = None
    specialization: Annotated[str, Text(200)] | None = None
    license_number: Annotated[str, Text(64)] | None = None


class PatientPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "username": "alice",
                    "email": "alice@example.org",
                    "full_name": "Alice Martin",
                    "date_of_birth": "1984-03-09",
                    "sex": "female",
                    "phone": "+33 6 12 34 56 78",
                }
            ]
        }
    )

    id: int
    username: str
    email: str
    full_name: str
    date_of_birth: date | None
    sex: Sex | None
    phone: str | None


class UserPublic(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "username": "alice",
                    "email": "alice@example.org",
                    "full_name": "Alice Martin",
                    "role": "patient",
                    "is_active": True,
                    "created_at": "2026-11-02T08:00:00Z",
                }
            ]
        }
    )

    id: int
    username: str
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: datetime


class UserActivation(RequestModel):
    is_active: StrictBool
