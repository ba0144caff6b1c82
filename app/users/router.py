"""Routes of doctors, patients, user activation and the reset of a user's second factor."""

from typing import Annotated, Any

from fastapi import Path, Query, Request, Response

from app.auth.dependencies import RequireAdmin, protected_router, reader_of
from app.auth.mfa import service as mfa_service
from app.core.dependencies import SessionDep
from app.core.pagination import PageDep, page_response
from app.core.responses import MAX_ID, errors, json_response
from app.core.schemas import Text
from app.users import service
from app.users.schemas import (
    DoctorPublic,
    DoctorUpdate,
    PatientPublic,
    UserActivation,
    UserPublic,
)

router = protected_router("users")

DoctorId = Annotated[int, Path(ge=1, le=MAX_ID, description="The doctor's user id")]
PatientId = Annotated[int, Path(ge=1, le=MAX_ID, description="The patient's user id")]
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(
    "/doctors/",
    summary="List doctors",
    description="Doctors in id order, optionally only those of one department. Admins and doctors.",
    response_model=list[DoctorPublic],
    responses=errors(401, 403),
)
async def list_doctors(
    page: PageDep,
    request: Request,
    department_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only doctors of this department")
    ] = None,
) -> Response:
    doctors, more = await service.list_doctors(reader_of(request), page, department_id)
    return page_response(doctors, more, request)


@router.get(
    "/doctors/{doctor_id}",
    summary="Get a doctor",
    description="One doctor's profile. Admins and doctors.",
    response_model=DoctorPublic,
    responses=errors(401, 403, 404),
)
async def get_doctor(doctor_id: DoctorId, request: Request) -> Response:
    return json_response(await service.get_doctor(reader_of(request), doctor_id))


@router.patch(
    "/doctors/{doctor_id}",
    summary="Update a doctor",
    description="Assign a doctor's department (`null` removes it), specialization or license "
    "number; only the fields sent change. An unknown department is a 422. Admins only.",
    response_model=DoctorPublic,
    responses=errors(401, 403, 404),
)
async def update_doctor(
    caller: RequireAdmin, session: SessionDep, doctor_id: DoctorId, changes: DoctorUpdate
) -> Any:
    return await service.update_doctor(session, caller, doctor_id, changes)


@router.get(
    "/patients/",
    summary="List patients",
    description="Patients in id order. `q` keeps those whose full name or username contains "
    "it, case-insensitively (`%` and `_` match themselves). Admins and doctors; every patient "
    "listed is audited.",
    response_model=list[PatientPublic],
    responses=errors(401, 403),
)
async def list_patients(
    page: PageDep,
    request: Request,
    q: Annotated[
        Annotated[str, Text(100)] | None,
        Query(description="Full name or username contains this (case-insensitive)"),
    ] = None,
) -> Response:
    patients, more = await service.list_patients(reader_of(request), page, q)
    return page_response(patients, more, request)


@router.get(
    "/patients/{patient_id}",
    summary="Get a patient",
    description="One patient's profile. Admins and doctors read any patient; a patient reads "
    "only himself (anyone else is a 404). Audited.",
    response_model=PatientPublic,
    responses=errors(401, 404),
)
async def get_patient(patient_id: PatientId, request: Request) -> Response:
    patient = await service.get_patient(reader_of(request), patient_id)
    return json_response(patient)


@router.patch(
    "/users/{user_id}",
    summary="Activate or deactivate a user",
    description='`{"is_active": false}` refuses every token of the user at once (and '
    "tokens issued before stay refused after a later activation). An administrator cannot "
    "deactivate himself (409). Admins only.",
    response_model=UserPublic,
    responses=errors(401, 403, 404, 409),
)
async def update_user(
    caller: RequireAdmin,
    session: SessionDep,
    user_id: UserId,
    changes: UserActivation,
    response: Response,
) -> Any:
    return await service.set_active(session, caller, user_id, changes.is_active)


@router.delete(
    "/users/{user_id}/mfa",
    status_code=204,
    response_class=Response,
    summary="Reset a user's multi-factor authentication",
    description="Removes the user's authenticator and recovery codes (a lost phone), and ends "
    "every login of his: his next login needs the password only, and a role in "
    "`MFA_REQUIRED_ROLES` must enrol again. A user without MFA: nothing changes (204). "
    "Audited. Admins only.",
    responses=errors(401, 403, 404),
)
async def reset_user_mfa(caller: RequireAdmin, session: SessionDep, user_id: UserId) -> Response:
    await mfa_service.reset(session, caller, user_id)
    return Response(status_code=204)
