"""Routes of emergency ("break the glass") access: opening a grant, reviewing grants."""

from typing import Annotated

from fastapi import Path, Request, Response

from app.auth.dependencies import DoctorWrite, protected_router, reader_of
from app.core.dependencies import SettingsDep
from app.core.pagination import PageDep, page_response
from app.core.responses import MAX_ID, errors
from app.emergency import service
from app.emergency.schemas import EmergencyAccessCreate, EmergencyGrantPublic, EmergencyGrantReview

router = protected_router("emergency")


@router.post(
    "/patients/{patient_id}/emergency-access",
    status_code=201,
    response_model=EmergencyGrantPublic,
    summary="Open emergency access to a patient's records",
    description=(
        "Doctors only. Lets the calling doctor read (never write) every record of the patient, "
        "whatever its department, until `expires_at` (`EMERGENCY_ACCESS_MINUTES`, default 60). "
        "The grant and every read under it are audited and appear in the patient's access "
        "log. `reason`: 10-500 characters. A doctor who already sees the patient through his "
        "department may open one too (it changes nothing for him). An id that is no "
        "patient → 404. A step up: a doctor with MFA (every doctor, when `doctor` is in "
        '`MFA_REQUIRED_ROLES`) needs a token of a login with a code (`amr` has `"otp"`), '
        "else 403."
    ),
    responses=errors(401, 403, 404),
)
async def open_emergency_access(
    patient_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: EmergencyAccessCreate,
    write: DoctorWrite,
    settings: SettingsDep,
    response: Response,
) -> EmergencyGrantPublic:
    grant = await service.open_grant(
        write,
        patient_id=patient_id,
        reason=body.reason,
        minutes=settings.emergency_access_minutes,
        mfa_required_roles=settings.mfa_required_roles,
    )
    return EmergencyGrantPublic.model_validate(grant)


@router.get(
    "/audit/emergency-access",
    response_model=list[EmergencyGrantReview],
    summary="Review emergency access grants",
    description=(
        "Admins only. Every grant ever opened, newest first, with `active` (not yet expired). "
        'Keyset pages by descending id: `limit`, `cursor`, `Link: <...>; rel="next"`.'
    ),
    responses=errors(401, 403),
)
async def list_emergency_grants(page: PageDep, request: Request) -> Response:
    grants, more = await service.review_grants(reader_of(request), page)
    return page_response(grants, more, request)
