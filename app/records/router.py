"""Routes of patient records: department-scoped, versioned, never deleted."""

from typing import Annotated

from fastapi import Header, Path, Query, Request, Response, status

from app.auth.dependencies import DoctorWrite, protected_router, reader_of
from app.core.pagination import PageDep, page_response
from app.core.responses import MAX_ID, errors, json_response
from app.records import service
from app.records.schemas import RecordCreate, RecordPublic, RecordUpdate, RecordVersionPublic

router = protected_router("records")

RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": 'The version, as "3"'}}


def _record_headers(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


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
    page: PageDep,
    request: Request,
    patient_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this patient's records")
    ] = None,
) -> Response:
    records, more = await service.list_records(reader_of(request), page, patient_id)
    return page_response(records, more, request)


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
async def create_record(write: DoctorWrite, data: RecordCreate) -> Response:
    record = await service.create_record(write, data)
    headers = {
        **_record_headers(record["version"]),
        "Location": f"/api/patient_records/{record['id']}",
    }
    return json_response(record, status_code=status.HTTP_201_CREATED, headers=headers)


@router.get(
    "/patient_records/{record_id}",
    summary="Get a patient record",
    description="A doctor reads his department's records (or any record of a patient he "
    "holds an emergency grant for); a patient his own. Anything else is a 404. The `ETag` "
    "header carries the version for `If-Match`. Audited.",
    response_model=RecordPublic,
    responses={**errors(401, 403, 404), 200: {"description": "The record", "headers": ETAG_HEADER}},
)
async def get_record(record_id: RecordId, request: Request) -> Response:
    record = await service.get_record(reader_of(request), record_id)
    return json_response(record, headers=_record_headers(record["version"]))


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
    write: DoctorWrite,
    record_id: RecordId,
    changes: RecordUpdate,
    if_match: Annotated[
        str | None,
        Header(max_length=200, description='The version the change is based on, as "3"'),
    ] = None,
) -> Response:
    record = await service.update_record(write, record_id, changes, if_match)
    return json_response(record, headers=_record_headers(record["version"]))


@router.get(
    "/patient_records/{record_id}/history",
    summary="A record's history",
    description="Every version of the record, the current one included, oldest first, each "
    "with its `version`. Visible as the record itself is. Audited.",
    response_model=list[RecordVersionPublic],
    responses={**errors(401, 403, 404), 200: {"description": "Versions", "headers": ETAG_HEADER}},
)
async def get_record_history(record_id: RecordId, page: PageDep, request: Request) -> Response:
    current, versions, more = await service.get_history(reader_of(request), record_id, page)
    last = versions[-1]["version"] if more else None
    return page_response(versions, more, request, last_id=last, headers=_record_headers(current))
