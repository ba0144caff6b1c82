"""Routes of patient records: department-scoped, versioned, never deleted."""

from typing import Annotated, Any

from fastapi import Header, Path, Query, Request, Response, status

from app.auth.dependencies import ClaimsDep, RequireDoctor, RequireDoctorOrPatient, authorize
from app.core.dependencies import SessionDep, request_session
from app.core.pagination import PageDep, paginate
from app.core.responses import MAX_ID, errors
from app.core.routing import APIRouter
from app.records import reads, service
from app.records.models import PatientRecord
from app.records.schemas import RecordCreate, RecordPublic, RecordUpdate, RecordVersionPublic

router = APIRouter(tags=["records"])

RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": 'The version, as "3"'}}


def _etag(response: Response, record: PatientRecord) -> None:
    response.headers["ETag"] = f'"{record.version}"'


@router.get(
    "/patient_records/",
    summary="List patient records",
    description="Records in id order: a doctor's department's records, a patient's own. "
    "`patient_id` narrows the list to one patient (never widens it); with it, a doctor "
    "holding an emergency grant for that patient also sees the patient's records of other "
    "departments. Admins are refused. Audited.",
    response_model=list[RecordPublic],
    responses=errors(401, 403),
)
async def list_records(
    claims: ClaimsDep,
    page: PageDep,
    request: Request,
    response: Response,
    patient_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this patient's records")
    ] = None,
) -> Any:
    if reads.available(request.app):
        return await reads.list_records(request, claims, page, patient_id)
    async with request_session(request) as session:
        caller = await authorize(session, request, claims, reads.READERS)
        records = await service.list_records(session, caller, page, patient_id)
    return paginate(records, page, request, response)


@router.post(
    "/patient_records/",
    status_code=status.HTTP_201_CREATED,
    summary="Write a patient record",
    description="A doctor writes a record into his own department: the server sets "
    "`department_id` and `author_id` (a body naming them is a 422). A doctor with no "
    "department gets 409; an unknown patient is a 422.",
    response_model=RecordPublic,
    responses={
        **errors(401, 403, 409),
        201: {"description": "Created", "headers": ETAG_HEADER},
    },
)
async def create_record(
    caller: RequireDoctor, session: SessionDep, data: RecordCreate, response: Response
) -> Any:
    record = await service.create_record(session, caller, data)
    _etag(response, record)
    response.headers["Location"] = f"/api/patient_records/{record.id}"
    return record


@router.get(
    "/patient_records/{record_id}",
    summary="Get a patient record",
    description="A doctor reads his department's records (or any record of a patient he "
    "holds an emergency grant for); a patient his own. Anything else is a 404. The `ETag` "
    "header carries the version for `If-Match`. Audited.",
    response_model=RecordPublic,
    responses={**errors(401, 403, 404), 200: {"description": "The record", "headers": ETAG_HEADER}},
)
async def get_record(
    claims: ClaimsDep, record_id: RecordId, request: Request, response: Response
) -> Any:
    if reads.available(request.app):
        return await reads.get_record(request, claims, record_id)
    async with request_session(request) as session:
        caller = await authorize(session, request, claims, reads.READERS)
        record = await service.get_record(session, caller, record_id)
    _etag(response, record)
    return record


@router.patch(
    "/patient_records/{record_id}",
    summary="Update a patient record",
    description="A doctor of the record's department changes the fields sent; the earlier "
    "version is kept (see history), `version` goes up by one and `author_id` becomes the "
    'updating doctor. With `If-Match: "<version>"` a stale version is a 412 (`*` matches '
    "any). Records of other departments are a 404, even under an emergency grant.",
    response_model=RecordPublic,
    responses={
        **errors(401, 403, 404, 412),
        200: {"description": "The updated record", "headers": ETAG_HEADER},
    },
)
async def update_record(
    caller: RequireDoctor,
    session: SessionDep,
    record_id: RecordId,
    changes: RecordUpdate,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(max_length=200, description='The version the change is based on, as "3"'),
    ] = None,
) -> Any:
    record = await service.update_record(session, caller, record_id, changes, if_match)
    _etag(response, record)
    return record


@router.get(
    "/patient_records/{record_id}/history",
    summary="A record's history",
    description="Every version of the record, the current one included, oldest first, each "
    "with its `version`. Visible as the record itself is. Audited.",
    response_model=list[RecordVersionPublic],
    responses={**errors(401, 403, 404), 200: {"description": "Versions", "headers": ETAG_HEADER}},
)
async def get_record_history(
    caller: RequireDoctorOrPatient,
    session: SessionDep,
    record_id: RecordId,
    page: PageDep,
    request: Request,
    response: Response,
) -> Any:
    record, versions = await service.get_history(session, caller, record_id, page)
    _etag(response, record)
    last = versions[page.limit - 1].version if len(versions) > page.limit else None
    return paginate(list(versions), page, request, response, last_id=last)
